"""Variants of issue 15's damaged-key items that its first fixes missed (an adversarial re-test).

Both generations: the legacy store's ``add_messages`` and ``add_new_messages`` (the 1.x
provider's script) run in either; the 1.x provider's ``save_messages`` in the current one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    CorruptThreadMetaError,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    rekey_prefix,
)
from agent_framework_redis_store._core.codec import message_from_dict

from .test_damaged_keys import WRITERS, snapshot, writer

KEYS = Keyspace().thread("t")
REGISTRY = Keyspace().registry


def message(text: str, role: str = "user") -> Any:
    return message_from_dict({"role": role, "contents": [{"type": "text", "text": text}]})


def ids(threads: Sequence[Any]) -> list[str]:
    return [t.thread_id for t in threads]


# A number to Lua's tonumber() but not to HINCRBY, which a trim runs after its writes.
NOT_HINCRBY_INTEGERS = ["1e3", "0x10", " 5", "1.0", "9" * 40, "-5"]


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize("value", NOT_HINCRBY_INTEGERS)
async def test_a_first_that_only_lua_reads_as_a_number_fails_a_trimming_append_whole(
    redis_url: str, raw: redis.asyncio.Redis, kind: str, value: str
) -> None:
    async with writer(kind, redis_url, max_messages=3) as save:
        await save([message("one"), message("two", "assistant"), message("three")])
        await raw.hset(KEYS.meta, "first", value)
        before = await snapshot(raw)
        with pytest.raises(CorruptThreadMetaError) as caught:
            await save([message("four", "assistant")])
    assert (caught.value.key, caught.value.field) == (KEYS.meta, "first")
    assert await snapshot(raw) == before


@pytest.mark.parametrize("value", NOT_HINCRBY_INTEGERS)
async def test_a_boundary_that_only_lua_reads_as_a_number_fails_remove_whole(
    redis_url: str, raw: redis.asyncio.Redis, value: str
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([message("one"), message("two", "assistant"), message("three")])
        await raw.hset(KEYS.meta, mapping={"summary": '{"role":"assistant","contents":[]}', "boundary": value})
        before = await snapshot(raw)
        with pytest.raises(CorruptThreadMetaError) as caught:
            await store.remove(message("two", "assistant"))
    assert (caught.value.key, caught.value.field) == (KEYS.meta, "boundary")
    assert await snapshot(raw) == before


@pytest.mark.parametrize("member", [b"\xff\xfe", b""], ids=["not-utf8", "empty"])
async def test_a_registry_entry_that_cannot_be_a_thread_id_is_reported_not_raised(
    redis_url: str, raw: redis.asyncio.Redis, member: bytes
) -> None:
    label_index = Keyspace().label_index("user", "alice")
    async with RedisChatMessageStore(redis_url, thread_id="alice-1", labels={"user": "alice"}) as store:
        await store.add_messages([message("hello")])
    await raw.zadd(REGISTRY, {member: 1})
    await raw.zadd(label_index, {member: 1})
    shown = member.decode("utf-8", "backslashreplace")
    async with RedisThreadRegistry(redis_url) as registry:
        page = await registry.list_threads()
        assert (ids(page.threads), page.damaged) == (["alice-1"], [shown])
        by_label = await registry.list_threads(labels={"user": "alice"})
        assert (ids(by_label.threads), by_label.damaged) == (["alice-1"], [shown])
        assert [t.thread_id async for t in registry.iter_threads()] == ["alice-1"]
        stats = await registry.stats()
        assert (stats.threads, stats.damaged) == (1, 1)
        assert await registry.reindex() == 1
        assert (await registry.purge(older_than=0, dry_run=True)).damaged == (shown,)
        receipt = await registry.erase(labels={"user": "alice"})
        assert (receipt.thread_ids, receipt.complete) == (("alice-1",), True)
        assert (await registry.purge(older_than=0)).damaged == (shown,)
    assert await raw.exists(*KEYS.owned, *Keyspace().thread("alice-1").owned) == 0


@pytest.mark.parametrize("where", ["messages", "summary", "session"])
async def test_rekey_of_plaintext_that_is_not_utf8_skips_it_and_names_the_key(
    redis_url: str, raw: redis.asyncio.Redis, where: str
) -> None:
    encryption = AESGCMEncryption({"k1": bytes(range(32))}, current="k1")
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([message("one")])
    damaged = {"messages": KEYS.messages, "summary": KEYS.meta, "session": KEYS.session}[where]
    if where == "messages":
        await raw.rpush(KEYS.messages, b"{\xff\xfe")
    elif where == "summary":
        await raw.hset(KEYS.meta, mapping={"summary": b"{\xff\xfe", "boundary": 1})
    else:
        await raw.set(KEYS.session, b"{\xff\xfe")
    before = await snapshot(raw)
    progress = await rekey_prefix(raw, encryption, encrypt_plaintext=True)
    assert [key for key, _ in progress.skipped] == [damaged]
    assert "not UTF-8" in progress.skipped[0][1]
    assert await snapshot(raw) == before
