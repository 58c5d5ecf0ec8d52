"""The thread registry on a real 3-master Redis Cluster, where its index is in another slot."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

from redis.asyncio import RedisCluster

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, RedisThreadRegistry, ThreadRecord, thread_key
from agent_framework_redis_store.testing import EmbeddedRedisCluster

from ..scripted import user_message

INDEX = Keyspace("chat_messages").registry


def record(thread_id: str, *, active: datetime) -> ThreadRecord:
    return ThreadRecord(
        thread_id=thread_id,
        messages=[user_message("hi").to_dict(exclude_none=True)],
        labels={},
        created_at=active,
        last_active=active,
        ttl=None,
        ttl_remaining=None,
    )


async def test_threads_on_every_node_are_listed_newest_first_with_labels(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    async with RedisChatMessageStore.factory(cluster_url, cluster=True, labels={"team": "blue"}) as factory:
        ids = [f"thread{n}" for n in range(12)]
        for thread_id in ids:
            await factory.store(thread_id).add_messages([user_message("hi"), user_message("there")])
        await factory.store("thread3").add_messages([user_message("newest")])  # now the most recent
    owners = {redis_cluster.node_for_key(thread_key("chat_messages", t)).port for t in ids}
    assert len(owners) == 3

    async with RedisThreadRegistry(cluster_url, cluster=True) as registry:
        listed = [t async for t in registry.iter_threads()]
        assert {t.thread_id for t in listed} == set(ids)
        assert listed[0].thread_id == "thread3"
        assert listed[0].message_count == 3
        assert all(t.labels == {"team": "blue"} for t in listed)
        first = await registry.list_threads(limit=5)
        second = await registry.list_threads(limit=50, cursor=first.next_cursor)
        assert [t.thread_id for t in first.threads + second.threads] == [t.thread_id for t in listed]
        assert (await registry.stats()).threads == 12
        assert (await registry.info("thread3")).message_count == 3
        assert await registry.missing(["thread0", "nobody"]) == ["nobody"]


async def test_concurrent_appends_keep_every_thread_indexed_once(cluster_url: str, cluster_raw: RedisCluster) -> None:
    async with RedisChatMessageStore.factory(cluster_url, cluster=True) as factory:

        async def converse(n: int) -> None:
            store = factory.store(f"busy{n}")
            for turn in range(5):
                await store.add_messages([user_message(f"{n}:{turn}")])

        await asyncio.gather(*(converse(n) for n in range(40)))
    assert await cluster_raw.zcard(INDEX) == 40
    async with RedisThreadRegistry(cluster_url, cluster=True) as registry:
        counts = {t.thread_id: t.message_count async for t in registry.iter_threads()}
    assert counts == {f"busy{n}": 5 for n in range(40)}


async def test_clear_and_delete_remove_threads_and_their_entries(cluster_url: str, cluster_raw: RedisCluster) -> None:
    async with RedisChatMessageStore.factory(cluster_url, cluster=True) as factory:
        for n in range(6):
            await factory.store(f"gone{n}").add_messages([user_message("bye")])
        await factory.store("gone0").clear()
    async with RedisThreadRegistry(cluster_url, cluster=True) as registry:
        assert await registry.delete(["gone1", "gone2", "gone0"]) == 2  # gone0 was cleared already
        assert sorted([t.thread_id async for t in registry.iter_threads()]) == ["gone3", "gone4", "gone5"]
    assert await cluster_raw.zcard(INDEX) == 3
    for thread_id in ("gone0", "gone1", "gone2"):
        assert (
            await cluster_raw.exists(
                thread_key("chat_messages", thread_id), Keyspace("chat_messages").thread(thread_id).meta
            )
            == 0
        )


async def test_export_import_and_purge_across_slots(cluster_url: str, cluster_raw: RedisCluster) -> None:
    now = datetime.now(UTC)
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="src", labels={"user": "alice"}) as store:
        await store.add_messages([user_message(f"m{i}") for i in range(3)])
    async with RedisThreadRegistry(cluster_url, cluster=True) as registry:
        exported = await registry.export_thread("src")
        async with RedisThreadRegistry(cluster_url, cluster=True, key_prefix="copy") as copy:
            assert await copy.import_thread(exported) is True
            assert await copy.import_thread(exported) is False  # exists: refused
            assert [t.thread_id async for t in copy.iter_threads()] == ["src"]
            assert (await copy.info("src")).labels == {"user": "alice"}

        for n in range(10):  # old threads on every node, entered in the index by the import
            await registry.import_thread(record(f"old{n}", active=now - timedelta(days=40)))
        dry = await registry.purge(older_than=timedelta(days=30), dry_run=True)
        assert (dry.purged, dry.dry_run) == (10, True)
        result = await registry.purge(older_than=timedelta(days=30))
        assert (result.purged, result.expired, result.kept) == (10, 0, 0)
        assert [t.thread_id async for t in registry.iter_threads()] == ["src"]
    assert await cluster_raw.zcard(INDEX) == 1
    assert await cluster_raw.exists(thread_key("chat_messages", "old0")) == 0


async def test_encrypted_threads_on_every_node_are_rekeyed_by_one_prefix_walk(
    cluster_url: str, cluster_raw: RedisCluster, redis_cluster: EmbeddedRedisCluster
) -> None:
    from agent_framework_redis_store import AESGCMEncryption, rekey_prefix

    old_key, new_key = os.urandom(32), os.urandom(32)
    ids = [f"secret{n}" for n in range(9)]
    assert len({redis_cluster.node_for_key(thread_key("chat_messages", t)).port for t in ids}) == 3
    old = AESGCMEncryption({"k1": old_key}, current="k1")
    async with RedisChatMessageStore.factory(cluster_url, cluster=True, encryption=old) as factory:
        for thread_id in ids:
            await factory.store(thread_id).add_messages([user_message(f"{thread_id} card 4111")])
    stored: list[bytes] = await cluster_raw.lrange(thread_key("chat_messages", "secret0"), 0, -1)  # type: ignore[misc]
    assert len(stored) == 1
    assert b"4111" not in stored[0]  # ciphertext at rest

    rotated = AESGCMEncryption({"k2": new_key, "k1": old_key}, current="k2")
    async with RedisChatMessageStore.factory(cluster_url, cluster=True, encryption=rotated) as factory:
        progress = await rekey_prefix(factory.redis_client, rotated)
        assert (progress.threads_seen, progress.entries_rekeyed) == (9, 9)
        only_new = AESGCMEncryption({"k2": new_key}, current="k2")
        for thread_id in ids:
            store = RedisChatMessageStore(thread_id=thread_id, redis_client=factory.redis_client, encryption=only_new)
            assert [m.text for m in await store.list_messages()] == [f"{thread_id} card 4111"]


async def test_label_indexes_erasure_and_fork_across_slots(cluster_url: str, cluster_raw: RedisCluster) -> None:
    keyspace = Keyspace("chat_messages")
    for n in range(6):  # threads on every node
        labels = {"user": "alice" if n % 2 else "bob"}
        async with RedisChatMessageStore(cluster_url, cluster=True, thread_id=f"t{n}", labels=labels) as store:
            await store.add_messages([user_message(f"m{n}")])
    async with RedisThreadRegistry(cluster_url, cluster=True) as registry:
        # The first thread of the prefix marked its label indexes complete: a page reads the index.
        assert await cluster_raw.exists(keyspace.labels_complete)
        page = await registry.list_threads(labels={"user": "alice"})
        assert [t.thread_id for t in page.threads] == ["t5", "t3", "t1"]

        # Relabel on the cluster: the thread moves between indexes beside its script.
        async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="t1", labels={"user": "bob"}) as moved:
            await moved.add_messages([user_message("now bob's")])
        assert [t.thread_id for t in (await registry.list_threads(labels={"user": "alice"})).threads] == ["t5", "t3"]
        assert await cluster_raw.zscore(keyspace.label_index("user", "alice"), "t1") is None

        copy = await registry.fork("t3", "t3-copy")
        assert [t.thread_id for t in (await registry.list_threads(labels={"user": "alice"})).threads] == [
            copy,
            "t5",
            "t3",
        ]
        receipt = await registry.erase(labels={"user": "alice"})
        assert sorted(receipt.thread_ids) == ["t3", "t3-copy", "t5"]
        assert receipt.messages_deleted == 3
        for thread_id in receipt.thread_ids:
            assert await cluster_raw.exists(*keyspace.thread(thread_id).owned) == 0
        assert await cluster_raw.zcard(keyspace.label_index("user", "alice")) == 0
        assert sorted(t.thread_id for t in (await registry.list_threads(labels={"user": "bob"})).threads) == [
            "t0",
            "t1",
            "t2",
            "t4",
        ]


async def test_migrate_refuses_a_cluster_node_as_its_source(cluster_url: str, redis_url: str) -> None:
    import pytest
    import redis.asyncio

    from agent_framework_redis_store import migrate_langchain

    node = redis.asyncio.Redis.from_url(cluster_url)  # one node sees only its own slots' keys
    async with RedisThreadRegistry(redis_url) as target:
        with pytest.raises(ValueError, match="is a Redis Cluster node, and migrate reads a standalone server"):
            await migrate_langchain(node, target)
    await node.aclose()
