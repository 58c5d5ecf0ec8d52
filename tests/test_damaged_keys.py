"""Damaged keys: a failed write changes nothing and names the key at fault; a damaged index never costs a message.

Both generations: the legacy store's ``add_messages`` and ``add_new_messages`` (the 1.x
provider's script) run in either; the 1.x provider's ``save_messages`` in the current one.
The damage is made with a plain client, as an operator's mistake or a foreign writer would.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import AESGCMEncryption, Keyspace, RedisChatMessageStore, RedisStoreError
from agent_framework_redis_store._core.codec import message_from_dict

KEYS = Keyspace().thread("t")
REGISTRY = Keyspace().registry
LABEL_INDEX = Keyspace().label_index("user", "alice")

Save = Callable[[Sequence[Any]], Awaitable[Any]]

WRITERS = [
    "add_messages",
    "add_new_messages",
    pytest.param("save_messages", marks=pytest.mark.current),
]


def message(text: str, role: str = "user") -> Any:
    return message_from_dict({"role": role, "contents": [{"type": "text", "text": text}]})


def texts(messages: Sequence[Any]) -> list[str]:
    return [m.text for m in messages]


@asynccontextmanager
async def writer(kind: str, redis_url: str, **options: Any) -> AsyncIterator[Save]:
    """A save of thread "t" as each writer makes it."""
    if kind == "save_messages":
        from agent_framework_redis_store import RedisChatHistoryProvider

        async with RedisChatHistoryProvider(redis_url, **options) as provider:
            yield lambda messages: provider.save_messages("t", messages)
    else:
        async with RedisChatMessageStore(redis_url, thread_id="t", **options) as store:
            yield getattr(store, kind)


async def transcript(redis_url: str) -> list[str]:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        return texts(await store.transcript())


async def snapshot(raw: redis.asyncio.Redis) -> dict[Any, tuple[Any, Any, bool]]:
    """Every key: its type, its whole value and whether it expires."""
    state: dict[Any, tuple[Any, Any, bool]] = {}
    for key in sorted(await raw.keys("*")):
        kind = await raw.type(key)
        if kind == b"list":
            value: Any = await raw.lrange(key, 0, -1)
        elif kind == b"hash":
            value = await raw.hgetall(key)
        elif kind == b"zset":
            value = await raw.zrange(key, 0, -1, withscores=True)
        else:
            value = await raw.get(key)
        state[key] = (kind, value, await raw.pttl(key) != -1)
    return state


# -- a companion key of the wrong type -----------------------------------------------------

# Each key an append writes, made to hold another type.
DAMAGED = [
    pytest.param(KEYS.meta, "string", id="meta-string"),
    pytest.param(KEYS.meta, "list", id="meta-list"),
    pytest.param(KEYS.index, "string", id="index-string"),
    pytest.param(KEYS.index, "hash", id="index-hash"),
    pytest.param(KEYS.fingerprints, "hash", id="fingerprints-hash"),
    pytest.param(KEYS.messages, "string", id="messages-string"),
    pytest.param(REGISTRY, "string", id="registry-string"),
    pytest.param(REGISTRY, "list", id="registry-list"),
    pytest.param(LABEL_INDEX, "string", id="label-index-string"),
]


async def make(raw: redis.asyncio.Redis, key: str, kind: str) -> None:
    await raw.delete(key)
    if kind == "string":
        await raw.set(key, "damaged")
    elif kind == "list":
        await raw.rpush(key, "damaged")
    else:
        await raw.hset(key, "damaged", "1")


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize(("damaged", "holds"), DAMAGED)
async def test_a_key_of_the_wrong_type_fails_the_write_whole_and_is_named(
    redis_url: str, raw: redis.asyncio.Redis, kind: str, damaged: str, holds: str
) -> None:
    if damaged == KEYS.fingerprints and kind == "add_messages":
        pytest.skip("add_messages keeps no fingerprints")
    async with writer(kind, redis_url, labels={"user": "alice"}, max_messages=5) as save:
        await save([message("one"), message("two", "assistant")])
        await make(raw, damaged, holds)
        before = await snapshot(raw)
        for _ in range(3):  # an application retrying its failed save: each fails whole
            with pytest.raises(RedisStoreError) as failed:
                await save([message("three")])
            assert repr(damaged) in str(failed.value)
            if damaged != KEYS.messages:
                assert repr(KEYS.messages) not in str(failed.value)
        assert await snapshot(raw) == before


@pytest.mark.parametrize("kind", ["add_messages", "add_new_messages"])
async def test_a_batch_set_of_the_wrong_type_fails_an_unregistered_write_whole(
    redis_url: str, raw: redis.asyncio.Redis, kind: str
) -> None:
    # A registered thread keeps its batch tokens in the meta hash; an unregistered one writes the set.
    async with writer(kind, redis_url, registry=False, max_messages=5) as save:
        await save([message("one"), message("two", "assistant")])
        await make(raw, KEYS.batches, "string")
        before = await snapshot(raw)
        with pytest.raises(RedisStoreError) as failed:
            await save([message("three")])
        assert repr(KEYS.batches) in str(failed.value)
        assert await snapshot(raw) == before


async def test_the_error_names_a_key_whatever_its_bytes(redis_url: str, raw: redis.asyncio.Redis) -> None:
    prefix = "app id 'x'\n%41"  # a space, a quote, a newline and a percent sign, all legal in a prefix
    keys = Keyspace(prefix).thread("t")
    async with RedisChatMessageStore(redis_url, thread_id="t", key_prefix=prefix) as store:
        await raw.set(keys.meta, "damaged")
        with pytest.raises(RedisStoreError, match="another type than the hash") as failed:
            await store.add_messages([message("one")])
        assert repr(keys.meta) in str(failed.value)
        assert await raw.exists(keys.messages) == 0


# -- a damaged index -------------------------------------------------------------------------


def mark(entry: Any) -> str:
    return hashlib.sha1(entry).hexdigest()[:16]


async def entries_continuing(raw: redis.asyncio.Redis) -> None:
    """Every entry but the newest says its message continues a tool-call group; the newest keeps its mark."""
    entries: list[bytes] = await raw.lrange(KEYS.index, 0, -1)  # type: ignore[misc]
    for position, entry in enumerate(entries[:-1]):
        await raw.lset(KEYS.index, position, b"-" + entry)  # type: ignore[misc]


async def non_numeric_entries(raw: redis.asyncio.Redis) -> None:
    for position in range(await raw.llen(KEYS.index) - 1):
        await raw.lset(KEYS.index, position, "garbage")


async def an_index_longer_than_the_list(raw: redis.asyncio.Redis) -> None:
    """Twenty entries saying "continues a group" slipped in before the newest, which keeps its mark."""
    *older, newest = await raw.lrange(KEYS.index, 0, -1)
    await raw.delete(KEYS.index)
    await raw.rpush(KEYS.index, *older, *["-7"] * 20, newest)


async def a_malformed_newest_entry(raw: redis.asyncio.Redis) -> None:
    newest = await raw.lindex(KEYS.messages, -1)
    await raw.lset(KEYS.index, -1, f"x|{mark(newest)}")  # the mark is right, the number is not


INDEX_DAMAGE = [entries_continuing, non_numeric_entries, an_index_longer_than_the_list, a_malformed_newest_entry]


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize("damage", INDEX_DAMAGE, ids=lambda damage: damage.__name__)
async def test_a_damaged_index_never_trims_more_than_max_messages_requires(
    redis_url: str, raw: redis.asyncio.Redis, kind: str, damage: Callable[[redis.asyncio.Redis], Awaitable[None]]
) -> None:
    history = [message(f"m{n}", "user" if n % 2 == 0 else "assistant") for n in range(10)]
    async with writer(kind, redis_url, max_messages=10) as save:
        await save(history)
        await damage(raw)
        await save([message("new")])
        assert await transcript(redis_url) == [*texts(history[1:]), "new"]
        await save([message("newer", "assistant")])
        assert await transcript(redis_url) == [*texts(history[2:]), "new", "newer"]


@pytest.mark.parametrize("damage", INDEX_DAMAGE, ids=lambda damage: damage.__name__)
@pytest.mark.parametrize("window", [{"context_messages": 5}, {"context_tokens": 60}], ids=["messages", "tokens"])
async def test_a_damaged_index_never_shortens_or_fails_a_window(
    redis_url: str, raw: redis.asyncio.Redis, damage: Callable[[redis.asyncio.Redis], Awaitable[None]], window: Any
) -> None:
    history = [message(f"m{n}", "user" if n % 2 == 0 else "assistant") for n in range(10)]
    async with RedisChatMessageStore(redis_url, thread_id="t", **window) as store:
        await store.add_messages(history)
        expected = texts(await store.list_messages())
        assert expected == texts(history[-len(expected) :])
        assert len(expected) >= 5
        await damage(raw)
        assert texts(await store.list_messages()) == expected


@pytest.mark.parametrize("edit", ["setitem", "remove", "rekey"])
async def test_an_edit_over_a_damaged_newest_index_entry_is_whole(
    redis_url: str, raw: redis.asyncio.Redis, edit: str
) -> None:
    old = AESGCMEncryption({"k1": bytes(range(32))}, current="k1")
    new = AESGCMEncryption({"k2": bytes(range(1, 33)), "k1": bytes(range(32))}, current="k2")
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=old) as store:
        await store.add_messages([message("one"), message("two", "assistant"), message("three")])
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=new, max_messages=10) as store:
        await a_malformed_newest_entry(raw)
        if edit == "setitem":
            await store.setitem(-1, message("third"))
            expected = ["one", "two", "third"]
        elif edit == "remove":
            await store.remove(message("three"))
            expected = ["one", "two"]
        else:
            assert await store.rekey() == 3
            expected = ["one", "two", "three"]
        assert texts(await store.transcript()) == expected
        await store.add_messages([message("four", "assistant")])
        assert texts(await store.transcript()) == [*expected, "four"]


# -- a damaged meta field the scripts compute with -------------------------------------------


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize("field", ["first", "boundary"])
async def test_a_damaged_position_field_fails_every_call_whole_naming_key_and_field(
    redis_url: str, raw: redis.asyncio.Redis, kind: str, field: str
) -> None:
    from agent_framework_redis_store import CorruptThreadMetaError

    async with writer(kind, redis_url, max_messages=3) as save:
        await save([message("one"), message("two", "assistant"), message("three")])
        await raw.hset(KEYS.meta, field, "garbage")
        before = await snapshot(raw)
        calls = []
        if field == "first":  # an append that trims adds to it; the removal below reads both
            calls.append(lambda: save([message("four")]))
        async with (
            RedisChatMessageStore(redis_url, thread_id="t") as reader,
            RedisChatMessageStore(redis_url, thread_id="t", context_messages=2) as windowed,
        ):
            stored = await reader.transcript()
            calls += [reader.list_messages, windowed.list_messages, lambda: reader.remove(stored[0])]
            for call in calls:
                with pytest.raises(CorruptThreadMetaError) as failed:
                    await call()
                assert (failed.value.key, failed.value.field) == (KEYS.meta, field)
        assert await snapshot(raw) == before
