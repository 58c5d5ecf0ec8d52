"""Faults of a real cluster under live conversations: a master killed and restarted, a slot resharded.

Writers acknowledge a batch only after the store returned, and re-send a failed batch with
the same idempotency key: every acknowledged batch must be stored exactly once, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import redis
from redis.crc import key_slot

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, RedisStoreError, thread_key
from agent_framework_redis_store.testing import EmbeddedRedis, EmbeddedRedisCluster

from ..scripted import user_message
from .support import thread_ids


class Writer:
    """Appends numbered two-message batches to one thread until stopped; re-sends failures."""

    def __init__(self, store: RedisChatMessageStore) -> None:
        self.store = store
        self.acknowledged = 0
        self.failures: list[str] = []
        self.stop = False

    async def run(self) -> None:
        while not self.stop:
            n = self.acknowledged
            batch = [user_message(f"{n} question"), user_message(f"{n} answer")]
            try:
                await self.store.add_messages(batch, idempotency_key=f"{self.store.thread_id}-{n}")
            except RedisStoreError as err:
                self.failures.append(type(err).__name__)
                await asyncio.sleep(0.02)  # the app backs off and re-sends the same batch
                continue
            self.acknowledged += 1

    async def check(self) -> None:
        stored = [m.text for m in await self.store.list_messages()]
        expected = [f"{n} {part}" for n in range(self.acknowledged) for part in ("question", "answer")]
        assert stored == expected, f"{self.store.thread_id}: {len(stored)} stored, {len(expected)} acknowledged"


async def poll(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        await asyncio.sleep(0.01)


def error_counts(node: EmbeddedRedis) -> dict[str, int]:
    """How many errors of each kind (MOVED, ASK, TRYAGAIN, ...) ``node`` replied since it started."""
    with redis.Redis(host="127.0.0.1", port=node.port) as client:
        stats: Any = client.info("errorstats")
    return {name.removeprefix("errorstat_"): int(entry["count"]) for name, entry in stats.items()}


async def test_a_killed_master_restarts_with_every_acknowledged_batch_once(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    victim = redis_cluster.nodes[1]
    on_victim = thread_ids(3, lambda key: redis_cluster.node_for_key(key) is victim)
    factory = RedisChatMessageStore.factory(cluster_url, cluster=True, socket_timeout=1.0)
    writers = [Writer(factory.store(thread_id)) for thread_id in on_victim]
    tasks = [asyncio.create_task(w.run()) for w in writers]
    try:
        await poll(lambda: all(w.acknowledged >= 5 for w in writers), 30, "the writers did not get going")
        victim.kill()  # SIGKILL: no shutdown; appendfsync always kept every acknowledged write
        await poll(lambda: all(w.failures for w in writers), 30, "the writers did not notice the dead master")
        at_restart = [w.acknowledged for w in writers]
        victim.start()
        await asyncio.to_thread(redis_cluster.wait_until_ok)
        # The same client (no new factory) finds the node again and the writers carry on.
        await poll(
            lambda: all(w.acknowledged >= n + 5 for w, n in zip(writers, at_restart, strict=True)),
            30,
            "the writers did not recover",
        )
    finally:
        for w in writers:
            w.stop = True
        await asyncio.gather(*tasks)
    for w in writers:
        await w.check()
        assert set(w.failures) == {"RedisUnavailableError"}
    await factory.aclose()


async def test_resharding_a_slot_with_live_threads_loses_and_doubles_nothing(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    slot = key_slot(thread_key("chat_messages", "t0").encode())
    in_slot = thread_ids(8, lambda key: key_slot(key.encode()) == slot)
    source = redis_cluster.node_for_slot(slot)
    target = next(node for node in redis_cluster.nodes if node is not source)
    # Threads that already live on the target keep its connection pool busy meanwhile.
    on_target = thread_ids(8, lambda key: redis_cluster.node_for_key(key) is target, prefix="other")

    factory = RedisChatMessageStore.factory(cluster_url, cluster=True)
    writers = [Writer(factory.store(thread_id)) for thread_id in in_slot + on_target]
    moving = writers[: len(in_slot)]
    tasks = [asyncio.create_task(w.run()) for w in writers]
    loop = asyncio.get_running_loop()

    def progress() -> int:
        return sum(w.acknowledged for w in moving)

    def between_batches() -> None:
        # Let the writers of the slot make progress while its keys are split between the
        # nodes (bounded well within the store's redirect budget: a thread whose keys are
        # split cannot progress until all of them moved).
        start, deadline = progress(), time.monotonic() + 0.5
        while progress() < start + len(moving) and time.monotonic() < deadline:
            time.sleep(0.002)

    try:
        await poll(lambda: all(w.acknowledged >= 3 for w in writers), 30, "the writers did not get going")
        # One key per MIGRATE, so each thread's keys spend a while on different nodes.
        moved = await loop.run_in_executor(
            None, lambda: redis_cluster.move_slot(slot, target, batch=1, between_batches=between_batches)
        )
        at_end = progress()
        await poll(lambda: progress() >= at_end + len(moving), 30, "the writers stopped after the resharding")
    finally:
        for w in writers:
            w.stop = True
        await asyncio.gather(*tasks)

    # Each thread's messages, index and meta hash (which holds its batch tokens) moved.
    assert moved == 3 * len(in_slot)
    assert redis_cluster.node_for_slot(slot) is target
    for w in writers:
        await w.check()
        assert w.failures == []  # redirections were followed, never surfaced
    await factory.aclose()


# Each redirection a resharding produces, forced one at a time: the store's operation
# succeeds and the node really replied with that redirection.


def _slot_and_nodes(redis_cluster: EmbeddedRedisCluster, thread_id: str) -> tuple[int, EmbeddedRedis, EmbeddedRedis]:
    slot = key_slot(thread_key("chat_messages", thread_id).encode())
    source = redis_cluster.node_for_slot(slot)
    target = next(node for node in redis_cluster.nodes if node is not source)
    return slot, source, target


async def test_a_stale_slot_map_is_followed_on_moved(cluster_url: str, redis_cluster: EmbeddedRedisCluster) -> None:
    slot, source, target = _slot_and_nodes(redis_cluster, "moved")
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="moved") as store:
        await store.add_messages([user_message("before")])  # the client now maps the slot to source
        redis_cluster.move_slot(slot, target)
        before = error_counts(source).get("MOVED", 0)
        await store.add_messages([user_message("after")])
        assert error_counts(source).get("MOVED", 0) > before
        assert [m.text for m in await store.list_messages()] == ["before", "after"]


async def test_a_migrated_thread_is_followed_on_ask(cluster_url: str, redis_cluster: EmbeddedRedisCluster) -> None:
    slot, source, target = _slot_and_nodes(redis_cluster, "ask")
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="ask") as store:
        await store.add_messages([user_message("before")])
        with redis.Redis(port=source.port, decode_responses=True) as client:
            present = cast(list[str], client.execute_command("CLUSTER GETKEYSINSLOT", slot, 100))
        redis_cluster.begin_migration(slot, target)
        try:
            redis_cluster.migrate_keys(slot, target, present)  # the whole thread is on the target now
            before = error_counts(source).get("ASK", 0)
            assert [m.text for m in await store.list_messages()] == ["before"]
            assert error_counts(source).get("ASK", 0) > before
        finally:
            redis_cluster.finish_migration(slot, target)
        await store.add_messages([user_message("after")])
        assert [m.text for m in await store.list_messages()] == ["before", "after"]


async def test_a_thread_split_between_nodes_is_retried_on_tryagain(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    slot, source, target = _slot_and_nodes(redis_cluster, "split")
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="split") as store:
        await store.add_messages([user_message("before")])
        thread = Keyspace().thread("split")
        redis_cluster.begin_migration(slot, target)
        try:
            redis_cluster.migrate_keys(slot, target, [thread.meta])  # messages stay on the source
            before = error_counts(source).get("TRYAGAIN", 0)
            append = asyncio.create_task(store.add_messages([user_message("during")]))
            # The append's script needs keys on both nodes: the source answers TRYAGAIN until all moved.
            await poll(lambda: error_counts(source).get("TRYAGAIN", 0) > before, 10, "no TRYAGAIN")
            assert not append.done()
            with redis.Redis(port=source.port, decode_responses=True) as client:
                rest = cast(list[str], client.execute_command("CLUSTER GETKEYSINSLOT", slot, 100))
            redis_cluster.migrate_keys(slot, target, rest)
            redis_cluster.finish_migration(slot, target)
            await append
        finally:
            if redis_cluster.node_for_slot(slot) is not target:
                redis_cluster.finish_migration(slot, target)
        assert [m.text for m in await store.list_messages()] == ["before", "during"]
