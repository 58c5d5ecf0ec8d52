"""The store's own behaviour, in either framework generation."""

from __future__ import annotations

import gc
import re
import warnings
from typing import Any

import pytest
import redis.asyncio
from redis.crc import key_slot

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, thread_key

from .scripted import user_message


def texts(messages: list) -> list[str]:
    return [m.text for m in messages]


async def test_generates_a_distinct_thread_id_per_store(redis_url: str) -> None:
    first, second = RedisChatMessageStore(redis_url), RedisChatMessageStore(redis_url)
    assert re.fullmatch(r"thread_[0-9a-f-]{36}", first.thread_id)
    assert first.thread_id != second.thread_id
    await first.aclose()
    await second.aclose()


async def test_appends_in_order_and_lists_oldest_first(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("one"), user_message("two")])
        await store.add_messages([user_message("three")])
        assert texts(await store.list_messages()) == ["one", "two", "three"]
        assert texts(await store.list_messages(last=2)) == ["two", "three"]
        assert texts(await store.list_messages(last=10)) == ["one", "two", "three"]
        assert await store.count() == 3


async def test_empty_batch_writes_nothing(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", ttl=60) as store:
        await store.add_messages([])
        assert await raw.exists(store.redis_key) == 0
        assert await store.list_messages() == []


async def test_max_messages_keeps_the_newest(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=3) as store:
        for i in range(5):
            await store.add_messages([user_message(f"m{i}")])
            assert await store.count() <= 3
        assert texts(await store.list_messages()) == ["m2", "m3", "m4"]
        # A batch larger than the limit keeps its own newest messages.
        await store.add_messages([user_message(f"b{i}") for i in range(7)])
        assert texts(await store.list_messages()) == ["b4", "b5", "b6"]


async def test_ttl_is_set_and_slides_once_it_has_drifted(redis_url: str, raw: redis.asyncio.Redis) -> None:
    keys = Keyspace("chat_messages").thread("t")
    async with RedisChatMessageStore(redis_url, thread_id="t", ttl=100) as store:
        await store.add_messages([user_message("hello")])
        for key in (keys.messages, keys.meta, keys.index):
            assert 99_000 < await raw.pttl(key) <= 100_000
        # Within a hundredth of the TTL (1 s here) the keys keep their expiry; beyond, all slide.
        for key in (keys.messages, keys.meta, keys.index):
            await raw.pexpire(key, 99_500)
        await store.add_messages([user_message("soon after")])
        assert [await raw.pttl(k) <= 99_500 for k in (keys.messages, keys.meta, keys.index)] == [True] * 3
        await raw.pexpire(store.redis_key, 5_000)  # as if 95 s had passed
        await store.add_messages([user_message("again")])
        for key in (keys.messages, keys.meta, keys.index):
            assert 99_000 < await raw.pttl(key) <= 100_000


async def test_a_key_an_append_creates_gets_the_thread_s_ttl(redis_url: str, raw: redis.asyncio.Redis) -> None:
    keys = Keyspace("chat_messages").thread("t")
    async with RedisChatMessageStore(redis_url, thread_id="t", ttl=100) as store:
        await store.add_messages([user_message("hello")])
        await raw.delete(keys.index)  # as a damaged index is dropped, then started again
        await store.add_messages([user_message("again")])
        assert await raw.llen(keys.index) == 1
        for key in (keys.messages, keys.meta, keys.index):
            assert 99_000 < await raw.pttl(key) <= 100_000


async def test_without_ttl_nothing_expires(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("hello")])
        assert await raw.pttl(store.redis_key) == -1


async def test_expired_thread_reads_empty(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", ttl=60) as store:
        await store.add_messages([user_message("hello")])
        await raw.pexpire(store.redis_key, 1)
        await raw.pexpire(Keyspace("chat_messages").thread("t").meta, 1)
        # Redis expires lazily on access: poll (bounded) until the key is gone.
        for _ in range(200):
            if not await raw.exists(store.redis_key):
                break
        assert await store.list_messages() == []


async def test_messages_seed_an_empty_thread_once(redis_url: str) -> None:
    seed = [user_message("seed 1"), user_message("seed 2")]
    async with RedisChatMessageStore(redis_url, thread_id="t", messages=seed) as store:
        assert texts(await store.list_messages()) == ["seed 1", "seed 2"]
        await store.add_messages([user_message("turn")])
    async with RedisChatMessageStore(redis_url, thread_id="t", messages=seed) as again:
        await again.add_messages([user_message("turn 2")])
        assert texts(await again.list_messages()) == ["seed 1", "seed 2", "turn", "turn 2"]


async def test_seed_goes_in_with_the_first_append(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", messages=[user_message("seed")]) as store:
        await store.add_messages([user_message("first")])
        assert await raw.llen(store.redis_key) == 2
        assert texts(await store.list_messages()) == ["seed", "first"]


async def test_clear_removes_every_key_of_the_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", ttl=60) as store:
        await store.add_messages([user_message("x")])
        other = RedisChatMessageStore(redis_client=raw, thread_id="other")
        await other.add_messages([user_message("keep")])
        await store.clear()
        assert await store.list_messages() == []
        # What is left is the other thread: its messages, index, meta hash (with its batch tokens) and entry.
        left = [
            other.redis_key,
            Keyspace("chat_messages").thread("other").index,
            Keyspace("chat_messages").thread("other").meta,
        ]
        prefix_keys = [Keyspace("chat_messages").registry, Keyspace("chat_messages").labels_complete]
        assert sorted(await raw.keys("*")) == sorted([k.encode() for k in [*left, *prefix_keys]])
        assert await raw.zrange(Keyspace("chat_messages").registry, 0, -1) == [b"other"]


async def test_same_idempotency_key_is_applied_once(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        batch = [user_message("once")]
        await store.add_messages(batch, idempotency_key="turn-1")
        await store.add_messages(batch, idempotency_key="turn-1")
        await store.add_messages(batch, idempotency_key="turn-2")
        assert texts(await store.list_messages()) == ["once", "once"]


async def test_a_store_is_always_truthy_and_its_length_is_awaited(redis_url: str) -> None:
    # Upstream declared `async __len__` (kept for drop-in code: `await store.__len__()`), so
    # len(store) raises; `if thread.message_store:` must still hold for an empty store.
    async with RedisChatMessageStore(redis_url) as store:
        assert bool(store)
        assert await store.__len__() == 0
        await store.add_messages([user_message("x")])
        assert await store.__len__() == 1
        # len() calls __len__, gets a coroutine it cannot use and drops it unawaited.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(TypeError):
                len(store)  # type: ignore[arg-type]
            gc.collect()
        assert [str(w.message) for w in caught] == ["coroutine 'RedisChatMessageStore.__len__' was never awaited"]


async def test_a_client_passed_in_stays_open(redis_url: str, raw: redis.asyncio.Redis) -> None:
    store = RedisChatMessageStore(redis_client=raw, thread_id="t")
    await store.add_messages([user_message("x")])
    await store.aclose()
    assert await raw.llen(store.redis_key) == 1


async def test_ping(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url) as store:
        assert await store.ping() is True


# -- key layout ---------------------------------------------------------------------------

TRICKY_IDS = [
    "a",
    "a:b",
    "a}:{b",
    "{a}",
    "a b",
    " a",
    "a%3Ab",
    "日本語のスレッド",
    "emoji 🧵",
    "x" * 1000,
    "chat_messages:{a}",
    "a\nb",
]


def test_keys_of_a_thread_share_one_cluster_slot() -> None:
    for thread_id in TRICKY_IDS:
        key = thread_key("chat_messages", thread_id)
        assert key_slot(key.encode()) == key_slot(Keyspace("chat_messages").thread(thread_id).batches.encode())
        assert key_slot(key.encode()) == key_slot(Keyspace("chat_messages").thread(thread_id).meta.encode())
        assert key.count("{") == 1
        assert key.count("}") == 1
        assert Keyspace("chat_messages").thread_id_of(key) == thread_id


def test_distinct_ids_never_share_a_key() -> None:
    keys = {thread_key(prefix, t) for prefix in ("p", "p:x") for t in TRICKY_IDS}
    assert len(keys) == 2 * len(TRICKY_IDS)


async def test_tricky_thread_ids_are_isolated(redis_url: str, raw: redis.asyncio.Redis) -> None:
    for thread_id in TRICKY_IDS:
        await RedisChatMessageStore(redis_client=raw, thread_id=thread_id).add_messages([user_message(thread_id)])
    for thread_id in TRICKY_IDS:
        store = RedisChatMessageStore(redis_client=raw, thread_id=thread_id)
        assert texts(await store.list_messages()) == [thread_id]
    # Per thread: messages, batch tokens, index, registry metadata; plus the prefix's registry
    # and its marker that the (here unused) label indexes are complete.
    assert len(await raw.keys("chat_messages:*")) == 3 * len(TRICKY_IDS) + 2
    registered = await raw.zrange(Keyspace("chat_messages").registry, 0, -1)
    assert sorted(registered) == sorted(t.encode() for t in TRICKY_IDS)


async def test_key_prefix_namespaces_threads(redis_url: str, raw: redis.asyncio.Redis) -> None:
    a = RedisChatMessageStore(redis_client=raw, thread_id="t", key_prefix="app_a")
    b = RedisChatMessageStore(redis_client=raw, thread_id="t", key_prefix="app_b")
    await a.add_messages([user_message("from a")])
    assert await b.list_messages() == []
    assert a.redis_key == "app_a:{t}"


async def test_a_batch_resent_with_the_same_message_ids_is_stored_once(redis_url: str) -> None:
    from agent_framework_redis_store._core.codec import message_from_dict

    def message(text: str, message_id: str | None) -> Any:
        data = {"role": "user", "contents": [{"type": "text", "text": text}]}
        return message_from_dict({**data, "message_id": message_id} if message_id else data)

    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        batch = [message("hi", "m1"), message("hello", "m2")]
        await store.add_messages(batch)
        await store.add_messages(batch)  # an application re-sending after an error
        assert texts(await store.list_messages()) == ["hi", "hello"]
        # Messages without ids are never taken for a re-send: "yes", "yes" is two answers.
        await store.add_messages([message("yes", None)])
        await store.add_messages([message("yes", None)])
        assert texts(await store.list_messages()) == ["hi", "hello", "yes", "yes"]


async def test_companion_keys_never_outlive_the_messages(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", ttl=100) as with_ttl:
        await with_ttl.add_messages([user_message("from a writer with a TTL")])
    async with RedisChatMessageStore(redis_url, thread_id="t") as without_ttl:
        await without_ttl.add_messages([user_message("from a writer without one")])
        await without_ttl.add_new_messages([user_message("and through the provider path")])
    for key in await raw.keys("chat_messages:{t}*"):
        assert 0 < await raw.pttl(key) <= 100_000, key
