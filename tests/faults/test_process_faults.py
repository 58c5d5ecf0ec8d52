"""Real faults of a real server: kill -9 mid-conversation, SIGSTOP, many racing writers.

Every acknowledged message must be present exactly once, in order; nothing is ever doubled.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from agent_framework_redis_store import RedisChatMessageStore, RedisUnavailableError
from agent_framework_redis_store.testing import EmbeddedRedis

from ..scripted import user_message

# A writer in its own process: it acknowledges each batch on stdout only after the store
# returned, and re-sends a batch that failed with the same idempotency key until it succeeds.
WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from agent_framework_redis_store import RedisChatMessageStore, RedisUnavailableError
    from agent_framework_redis_store._core.codec import message_from_dict

    url, batches = sys.argv[1], int(sys.argv[2])

    def message(text):
        return message_from_dict({"role": "user", "contents": [{"type": "text", "text": text}]})

    async def main():
        store = RedisChatMessageStore(url, thread_id="conversation", socket_timeout=1.0)
        for n in range(batches):
            batch = [message(f"turn {n} question"), message(f"turn {n} answer")]
            while True:
                try:
                    await store.add_messages(batch, idempotency_key=f"turn-{n}")
                    break
                except RedisUnavailableError:
                    await asyncio.sleep(0.05)  # the server is down: the app waits and re-sends
            print(f"ack {n}", flush=True)
        await store.aclose()

    asyncio.run(main())
    """
)


def test_kill_9_mid_conversation_loses_and_doubles_nothing(own_server: EmbeddedRedis) -> None:
    batches = 120
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, own_server.url, str(batches)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert writer.stdout is not None
    acknowledged: list[int] = []
    for line in writer.stdout:
        acknowledged.append(int(line.split()[1]))
        if len(acknowledged) == 40:
            own_server.kill()  # SIGKILL: no shutdown, no final fsync
            own_server.start()  # the same data directory: AOF with appendfsync always
        if len(acknowledged) == batches:
            break
    assert writer.wait(timeout=60) == 0, writer.stderr.read() if writer.stderr else ""
    assert acknowledged == list(range(batches))

    with redis.Redis.from_url(own_server.url) as client:
        stored = [entry.decode() for entry in client.lrange("chat_messages:{conversation}", 0, -1)]  # type: ignore[union-attr]
    texts = [m.text for m in asyncio.run(_list(own_server.url))]
    assert len(stored) == 2 * batches
    assert texts == [t for n in range(batches) for t in (f"turn {n} question", f"turn {n} answer")]


async def _list(url: str) -> list:
    async with RedisChatMessageStore(url, thread_id="conversation") as store:
        return await store.list_messages()


async def test_sigstop_fails_within_the_socket_timeout_then_recovers_without_duplicates(
    own_server: EmbeddedRedis,
) -> None:
    timeout, retries = 0.3, 1
    retry = Retry(NoBackoff(), retries=retries)
    inspector = redis.asyncio.Redis.from_url(own_server.url)
    async with RedisChatMessageStore(own_server.url, thread_id="t", socket_timeout=timeout, retry=retry) as store:
        await store.add_messages([user_message("before the freeze")])
        calls_before = (await inspector.info("commandstats"))["cmdstat_evalsha"]["calls"]
        own_server.pause()
        batch = [user_message("sent while frozen")]
        started = time.monotonic()
        with pytest.raises(RedisUnavailableError, match="unreachable"):
            await store.add_messages(batch, idempotency_key="frozen-turn")
        elapsed = time.monotonic() - started
        # Every attempt gave up after the socket timeout: the caller hears back, it does not hang.
        assert elapsed < (retries + 1) * timeout + 2.0
        own_server.resume()
        # The application re-sends the failed batch; the attempts buffered while frozen ran too.
        await store.add_messages(batch, idempotency_key="frozen-turn")
        # A frozen attempt executed once the server woke up, and so did the re-send ...
        calls = (await inspector.info("commandstats"))["cmdstat_evalsha"]["calls"] - calls_before
        assert calls >= 2
        # ... yet the batch is stored exactly once.
        assert [m.text for m in await store.list_messages()] == ["before the freeze", "sent while frozen"]
    await inspector.aclose()


async def test_fifty_writers_two_hundred_appends_each(redis_url: str, raw: redis.asyncio.Redis) -> None:
    writers, appends, limit = 50, 200, 100
    factory = RedisChatMessageStore.factory(redis_url, thread_id="crowd", max_messages=limit, max_connections=50)
    key = factory().redis_key
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    observed: list[int] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            observed.append(await raw.llen(key))

    async def write(writer: int) -> None:
        store = factory()
        for n in range(appends):
            text = f"w{writer}:{n}"
            sent[text] = time.monotonic()
            await store.add_messages([user_message(text)])
            acked[text] = time.monotonic()

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    await sampler
    await factory.aclose()

    assert len(acked) == writers * appends
    assert len(observed) > 100
    assert max(observed) <= limit
    final = [m.text for m in await RedisChatMessageStore(redis_client=raw, thread_id="crowd").list_messages()]
    assert len(final) == limit
    assert len(set(final)) == limit
    # Per writer, what survives is a gap-free run of its newest appends, in its own order.
    per_writer: dict[str, list[int]] = {}
    for text in final:
        writer, n = text.split(":")
        per_writer.setdefault(writer, []).append(int(n))
    for sequence in per_writer.values():
        assert sequence == list(range(appends - len(sequence), appends))
    # The survivors are the newest: a trimmed append committed before every survivor did, so it
    # was sent before any survivor was acknowledged. (A survivor acknowledged before some
    # trimmed append was even sent would be an older message kept in place of a newer one.)
    trimmed = set(acked) - set(final)
    assert max(sent[t] for t in trimmed) < min(acked[m] for m in final)
