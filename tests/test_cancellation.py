"""task.cancel() stops every public coroutine promptly, and the client stays usable (both generations).

redis-py sends each command through ``asyncio.wait_for``, which on Python 3.11 drops a cancel
that arrives as the send completes: a loop over many pages then ran to its end. Each test
cancels a task at the moment its previous step returned (the next step's send is the first
thing it awaits), so it fails wherever a cancellation is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    RedisChatMessageStore,
    RedisThreadRegistry,
    RekeyProgress,
    rekey_prefix,
)
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message

THREADS = 3000
# A generous bound on how long a cancelled task may take to end: far more than one round trip.
PROMPTLY = 5.0

Work = Callable[[Callable[[], None]], Coroutine[Any, Any, object]]


async def _fill(redis_url: str, threads: int = THREADS) -> None:
    """``threads`` threads, each with one message and the label team=a."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        for start in range(0, threads, 50):
            await asyncio.gather(
                *(
                    RedisChatMessageStore(redis_client=client, thread_id=f"t{i:05}", labels={"team": "a"}).add_messages(
                        [user_message("hi")]
                    )
                    for i in range(start, start + 50)
                )
            )
    finally:
        await client.aclose()


async def _cancel_after_first_step(work: Work) -> None:
    """Run ``work(step_done)`` in a task, cancel it once its first step is done, and expect it to end cancelled."""
    first_step = asyncio.Event()
    task = asyncio.create_task(work(first_step.set))
    waiting = asyncio.create_task(first_step.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
    waiting.cancel()
    assert first_step.is_set(), f"the work ended before its first step: {task}"
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=PROMPTLY)
    assert done, f"still running {PROMPTLY} s after cancel(): the cancellation was swallowed"
    assert task.cancelled(), f"the work ended without raising CancelledError: {task}"


@pytest.mark.parametrize("client", ["own pool", "caller's client"])
async def test_cancelling_a_loop_over_iter_threads_stops_it(redis_url: str, client: str) -> None:
    await _fill(redis_url)
    given = redis.asyncio.Redis.from_url(redis_url) if client == "caller's client" else None
    seen: list[str] = []
    async with RedisThreadRegistry(None if given else redis_url, redis_client=given) as registry:

        async def work(step_done: Callable[[], None]) -> None:
            async for thread in registry.iter_threads():
                seen.append(thread.thread_id)
                step_done()

        await _cancel_after_first_step(work)
        assert len(seen) < THREADS
        assert await registry.count() == THREADS  # the client still answers
    if given is not None:
        await given.aclose()


async def test_cancelling_a_loop_over_list_threads_stops_it(redis_url: str) -> None:
    await _fill(redis_url)
    async with RedisThreadRegistry(redis_url) as registry:

        async def work(step_done: Callable[[], None]) -> None:
            cursor: str | None = None
            while True:
                page = await registry.list_threads(limit=100, cursor=cursor)
                step_done()
                assert page.next_cursor is not None, "paged through every thread"
                cursor = page.next_cursor

        await _cancel_after_first_step(work)


@pytest.mark.parametrize("dry_run", [False, True])
async def test_cancelling_erase_stops_it(redis_url: str, dry_run: bool) -> None:
    await _fill(redis_url)
    async with RedisThreadRegistry(redis_url) as registry:

        async def work(step_done: Callable[[], None]) -> None:
            await registry.erase(labels={"team": "a"}, dry_run=dry_run, on_progress=lambda done: step_done())

        await _cancel_after_first_step(work)
        if not dry_run:
            assert 0 < await registry.count() < THREADS  # it stopped after a batch


async def test_cancelling_purge_stops_it(redis_url: str) -> None:
    await _fill(redis_url)
    async with RedisThreadRegistry(redis_url) as registry:

        async def work(step_done: Callable[[], None]) -> None:
            await registry.purge(older_than=0, on_progress=lambda done, total: step_done())

        await _cancel_after_first_step(work)
        assert 0 < await registry.count() < THREADS


async def test_cancelling_reads_of_a_long_thread_stops_them(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="long") as store:
        for start in range(0, 2000, 500):
            await store.add_messages([user_message(f"m{n}") for n in range(start, start + 500)])

        async def work(step_done: Callable[[], None]) -> None:
            while True:
                assert len(await store.list_messages()) == 2000
                step_done()

        await _cancel_after_first_step(work)
        assert len(await store.list_messages()) == 2000


async def test_cancelling_a_loop_of_appends_stops_it(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:

        async def work(step_done: Callable[[], None]) -> None:
            for n in range(10_000):
                await store.add_messages([user_message(f"m{n}")])
                step_done()

        await _cancel_after_first_step(work)
        assert 0 < await store.count() < 10_000


@pytest.mark.current
async def test_cancelling_a_loop_of_provider_saves_stops_it(redis_url: str) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore

    async with RedisChatHistoryProvider(redis_url) as provider, RedisSessionStore(redis_url) as sessions:
        from agent_framework import AgentSession

        async def work(step_done: Callable[[], None]) -> None:
            for n in range(10_000):
                await provider.save_messages("s", [user_message(f"m{n}")])
                await sessions.set("s", AgentSession(session_id="s"))
                step_done()

        await _cancel_after_first_step(work)
        assert 0 < len(await provider.get_messages("s")) < 10_000


async def test_cancelling_rekey_prefix_stops_it(redis_url: str) -> None:
    old = AESGCMEncryption({"k1": b"1" * 32}, current="k1")
    new = AESGCMEncryption({"k1": b"1" * 32, "k2": b"2" * 32}, current="k2")
    client = redis.asyncio.Redis.from_url(redis_url)
    for start in range(0, 600, 50):
        await asyncio.gather(
            *(
                RedisChatMessageStore(redis_client=client, thread_id=f"t{i}", encryption=old).add_messages(
                    [user_message("secret")]
                )
                for i in range(start, start + 50)
            )
        )
    progress: list[RekeyProgress] = []

    async def work(step_done: Callable[[], None]) -> None:
        def report(step: RekeyProgress) -> None:
            progress.append(step)
            step_done()

        await rekey_prefix(client, new, on_progress=report, scan_count=50)

    await _cancel_after_first_step(work)
    assert 0 < len(progress) < 600
    await client.aclose()


# -- a server that stops answering -------------------------------------------------------------


@pytest.mark.parametrize("yields", range(6))
async def test_a_cancel_while_the_server_hangs_ends_the_call_and_the_client_recovers(
    own_server: EmbeddedRedis, yields: int
) -> None:
    # A socket timeout far beyond the test's bound: only the cancellation can end the call.
    async with RedisChatMessageStore(own_server.url, thread_id="t", socket_timeout=60) as store:
        await store.add_messages([user_message("before the freeze")])  # the pool holds a connection
        own_server.pause()
        try:
            task = asyncio.create_task(store.list_messages())
            # Cancel at each point of the call in turn: before it sends, as the send completes
            # (where Python 3.11's wait_for drops a cancel), while it waits for the reply.
            for _ in range(yields):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=PROMPTLY)
            assert done, f"still waiting for the frozen server {PROMPTLY} s after cancel()"
            assert task.cancelled(), f"ended without CancelledError: {task}"
        finally:
            own_server.resume()
        assert [m.text for m in await store.list_messages()] == ["before the freeze"]
        await store.add_messages([user_message("after")])
        assert [m.text for m in await store.list_messages()] == ["before the freeze", "after"]
