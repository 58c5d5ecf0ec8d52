"""task.cancel() stops a loop over a Redis Cluster's threads promptly (see tests/test_cancellation.py)."""

from __future__ import annotations

import asyncio

from agent_framework_redis_store import RedisChatMessageStore, RedisThreadRegistry

from ..scripted import user_message

THREADS = 1200


async def test_cancelling_a_loop_over_iter_threads_stops_it(cluster_url: str) -> None:
    async with RedisChatMessageStore.factory(cluster_url, cluster=True) as factory:
        for start in range(0, THREADS, 50):
            await asyncio.gather(
                *(factory.store(f"t{i}").add_messages([user_message("hi")]) for i in range(start, start + 50))
            )
    async with RedisThreadRegistry(cluster_url, cluster=True) as registry:
        first = asyncio.Event()
        seen: list[str] = []

        async def work() -> None:
            async for thread in registry.iter_threads():
                seen.append(thread.thread_id)
                first.set()

        task = asyncio.create_task(work())
        waiting = asyncio.create_task(first.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
        waiting.cancel()
        assert first.is_set(), f"the loop ended before its first thread: {task}"
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5.0)
        assert done, "still running 5 s after cancel(): the cancellation was swallowed"
        assert task.cancelled()
        assert len(seen) < THREADS
        assert await registry.count() == THREADS
