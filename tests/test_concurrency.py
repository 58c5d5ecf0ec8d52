"""Many writers on one thread, in one process and across processes; a shared, bounded pool."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict

import redis
import redis.asyncio

from agent_framework_redis_store import RedisChatMessageStore

from .scripted import user_message

MAX = 50


def check_history(texts: list[str], *, batch_size: int, batches: int) -> None:
    """Batches are contiguous and, per writer, exactly the newest ones survive, in order."""
    groups: list[tuple[str, int, list[int]]] = []
    for text in texts:
        writer, batch, index = text.split(":")
        if groups and groups[-1][:2] == (writer, int(batch)):
            groups[-1][2].append(int(index))
        else:
            groups.append((writer, int(batch), [int(index)]))
    for position, (_, _, indexes) in enumerate(groups):
        if position == 0:  # the oldest batch may have been cut by the trim
            assert indexes == list(range(batch_size - len(indexes), batch_size))
        else:
            assert indexes == list(range(batch_size)), f"batch interleaved with another writer: {groups}"
    per_writer: dict[str, list[int]] = defaultdict(list)
    for writer, batch, _ in groups:
        per_writer[writer].append(batch)
    for sequence in per_writer.values():
        # Trimming only removes the oldest: each writer keeps a gap-free suffix of its batches.
        assert sequence == list(range(sequence[0], batches))


async def test_concurrent_writers_never_exceed_max_messages(redis_url: str, raw: redis.asyncio.Redis) -> None:
    writers, batches, batch_size = 8, 60, 3
    key = RedisChatMessageStore(redis_client=raw, thread_id="race").redis_key
    done = asyncio.Event()
    observed: list[int] = []

    async def sample() -> None:
        while not done.is_set():
            observed.append(await raw.llen(key))

    async def write(writer: int) -> None:
        async with RedisChatMessageStore(redis_url, thread_id="race", max_messages=MAX) as store:
            for batch in range(batches):
                await store.add_messages([user_message(f"w{writer}:{batch}:{i}") for i in range(batch_size)])

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    await sampler

    assert len(observed) > 20  # the sampler really ran alongside the writers
    assert max(observed) <= MAX
    store = RedisChatMessageStore(redis_client=raw, thread_id="race")
    texts = [m.text for m in await store.list_messages()]
    assert len(texts) == MAX
    check_history(texts, batch_size=batch_size, batches=batches)


WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from agent_framework_redis_store import RedisChatMessageStore
    from agent_framework_redis_store._core.codec import message_from_dict

    url, writer, batches, size, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

    def message(text):
        return message_from_dict({"role": "user", "contents": [{"type": "text", "text": text}]})

    async def main():
        async with RedisChatMessageStore(url, thread_id="multi", max_messages=limit) as store:
            for batch in range(batches):
                await store.add_messages([message(f"{writer}:{batch}:{i}") for i in range(size)])
        print("acknowledged", batches)

    asyncio.run(main())
    """
)


def test_writers_in_separate_processes(redis_url: str) -> None:
    processes, batches, batch_size, limit = 3, 60, 2, 40
    key = RedisChatMessageStore(redis_url, thread_id="multi").redis_key
    observed: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with redis.Redis.from_url(redis_url) as client:
            while not stop.is_set():
                observed.append(int(client.llen(key)))  # type: ignore[arg-type]

    sampler = threading.Thread(target=sample)
    sampler.start()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, redis_url, f"p{n}", str(batches), str(batch_size), str(limit)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for n in range(processes)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    stop.set()
    sampler.join()

    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()
        assert out.decode().strip() == f"acknowledged {batches}"
    assert max(observed) <= limit
    with redis.Redis.from_url(redis_url) as client:
        assert client.llen(key) == limit
    texts = [m.text for m in asyncio.run(_list(redis_url, "multi"))]
    check_history(texts, batch_size=batch_size, batches=batches)


async def _list(url: str, thread_id: str) -> list:
    async with RedisChatMessageStore(url, thread_id=thread_id) as store:
        return await store.list_messages()


async def test_a_thousand_threads_share_one_bounded_pool(redis_url: str, raw: redis.asyncio.Redis) -> None:
    factory = RedisChatMessageStore.factory(
        redis_url, max_connections=8, thread_id=lambda: f"user_{os.urandom(4).hex()}"
    )
    stores = [factory() for _ in range(1000)]
    assert len({s.thread_id for s in stores}) == 1000
    done = asyncio.Event()
    observed: list[int] = []

    async def sample() -> None:  # one connection of its own, used sequentially
        while not done.is_set():
            observed.append(int((await raw.info("clients"))["connected_clients"]))

    async def use(store: RedisChatMessageStore) -> None:
        await store.add_messages([user_message(store.thread_id)])
        assert [m.text for m in await store.list_messages()] == [store.thread_id]
        await store.aclose()  # never closes the shared pool

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(use(s) for s in stores))
    done.set()
    await sampler
    # The factory's 8 pooled connections, plus the sampler's.
    assert 2 <= max(observed) <= 8 + 1
    assert await factory().count() == 0  # the pool still works after every store closed
    await factory.aclose()
    # The server notices closed sockets asynchronously: poll, for at most 5 s.
    for _ in range(500):
        if int((await raw.info("clients"))["connected_clients"]) == 1:
            break
        await asyncio.sleep(0.01)
    assert int((await raw.info("clients"))["connected_clients"]) == 1
