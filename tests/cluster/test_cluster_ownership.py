"""A thread is every key it owns on a Redis Cluster too, where the registry and the label
indexes live in other slots than the thread's keys (issue 15)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from redis.asyncio import RedisCluster

from agent_framework_redis_store import (
    AESGCMEncryption,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    ThreadRecord,
    rekey_prefix,
)
from agent_framework_redis_store._core.encryption import key_id_of

from ..scripted import user_message

KEYS = Keyspace("chat_messages")
SNAPSHOT = '{"type":"session","session_id":"s","state":{}}'


async def write(url: str, thread_id: str, labels: dict[str, str] | None, **options: object) -> None:
    async with RedisChatMessageStore(url, cluster=True, thread_id=thread_id, labels=labels, **options) as store:  # type: ignore[arg-type]
        await store.add_messages([user_message("hello")])


async def left(raw: RedisCluster, *thread_ids: str) -> int:
    return sum([await raw.exists(*KEYS.thread(t).owned) for t in thread_ids])


async def test_evicted_and_damaged_threads_are_listed_erased_and_purged_across_slots(
    cluster_url: str, cluster_raw: RedisCluster
) -> None:
    for n in range(3):
        await write(cluster_url, f"alice-{n}", {"user": "alice"})
    await write(cluster_url, "bob", {"user": "bob"})
    await cluster_raw.delete(KEYS.thread("alice-0").meta)  # evicted
    await cluster_raw.set(KEYS.thread("alice-0").session, SNAPSHOT)
    await cluster_raw.hset(KEYS.thread("alice-1").meta, "count", "many")  # type: ignore[misc]
    await cluster_raw.delete(KEYS.thread("alice-2").meta)
    await cluster_raw.set(KEYS.thread("alice-2").meta, "a string")  # damaged: another type
    async with RedisThreadRegistry(cluster_url, cluster=True) as registry:
        page = await registry.list_threads(labels={"user": "alice"})
        assert ([t.thread_id for t in page.threads], sorted(page.damaged)) == (["alice-0"], ["alice-1", "alice-2"])
        receipt = await registry.erase(labels={"user": "alice"})
        assert sorted(receipt.thread_ids) == ["alice-0", "alice-1", "alice-2"]
        assert receipt.complete
        assert await left(cluster_raw, "alice-0", "alice-1", "alice-2") == 0
        assert [t.thread_id for t in (await registry.list_threads()).threads] == ["bob"]

        long_ago = datetime(2020, 1, 1, tzinfo=UTC)
        for thread_id in ("old", "old-broken"):
            record = ThreadRecord(
                thread_id, [user_message("hi").to_dict(exclude_none=True)], {}, long_ago, long_ago, None, None
            )
            await registry.import_thread(record)
        await cluster_raw.delete(KEYS.thread("old").messages, KEYS.thread("old").meta, KEYS.thread("old").index)
        await cluster_raw.set(KEYS.thread("old").session, SNAPSHOT)  # all that is left of it
        await cluster_raw.hset(KEYS.thread("old-broken").meta, "active", "yesterday")  # type: ignore[misc]
        result = await registry.purge(older_than=timedelta(days=30))
        assert (result.purged, result.damaged) == (1, ("old-broken",))
        assert await left(cluster_raw, "old") == 0


async def test_a_session_only_thread_is_rekeyed_and_foreign_keys_skipped_across_slots(
    cluster_url: str, cluster_raw: RedisCluster
) -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    old = AESGCMEncryption({"k1": old_key}, current="k1")
    for n in range(3):
        await write(cluster_url, f"full-{n}", None, encryption=old)
        session = KEYS.thread(f"session-{n}").session
        await cluster_raw.set(session, old.encrypt(SNAPSHOT, context=session))
    await cluster_raw.set("chat_messages:{str}", "not a list")
    rotated = AESGCMEncryption({"k2": new_key, "k1": old_key}, current="k2")
    async with RedisChatMessageStore.factory(cluster_url, cluster=True, encryption=rotated) as factory:
        report = await rekey_prefix(factory.redis_client, rotated)
    assert (report.threads_seen, report.entries_rekeyed) == (6, 6)
    assert [key for key, _ in report.skipped] == ["chat_messages:{str}"]
    for n in range(3):
        sealed = await cluster_raw.get(KEYS.thread(f"session-{n}").session)
        assert sealed is not None
        assert key_id_of(sealed) == "k2"
