"""Redis Cluster: per-turn latency against the one-round-trip floor, and 1,000 threads at once.

Run (after ./scripts/test has created the environments; either generation works):

    .venv-current/bin/python benchmarks/cluster.py [--turns 2000]

Starts a private 3-master cluster on loopback. Part 1: a thread pre-filled with 100
messages gets one user and one assistant message per turn (``max_messages=100``, so every
append also trims, and a sliding TTL). The floor is raw redis-py ``RedisCluster`` encoding
the same two messages and appending them with one ``RPUSH``; "ours on plain RedisCluster"
is the store on an unbounded redis-py client, to show what the in-flight bound costs, and
"registry=False" leaves out the thread registry, whose index (another hash slot) gets its
``ZADD`` from the client beside the thread's script.
Blocks are interleaved; figures are medians of per-call latencies.

Part 2: 1,000 threads each append one turn at once through one shared client with
``max_connections=32``: the store's factory (``cluster=True``) against the same load on a
plain ``RedisCluster(max_connections=32)``. Connections are counted per node with CLIENT LIST.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis

# The same messages and timing loop as the append benchmark (this folder is on sys.path).
from append import ASSISTANT_TEXT, USER_TEXT, _message, _time_block
from redis.asyncio import RedisCluster

from agent_framework_redis_store import RedisChatMessageStore, RedisStoreError
from agent_framework_redis_store._core.codec import encode_message
from agent_framework_redis_store.testing import EmbeddedRedisCluster

HISTORY = 100


async def latency(url: str, turns: int, rounds: int = 10) -> dict[str, float]:
    plain = RedisCluster.from_url(url)
    user, assistant = _message("user", USER_TEXT), _message("assistant", ASSISTANT_TEXT)
    filler = [encode_message(user if i % 2 == 0 else assistant) for i in range(HISTORY)]
    ours = RedisChatMessageStore(url, cluster=True, thread_id="bench ours", max_messages=HISTORY, ttl=3600)
    on_plain = RedisChatMessageStore(redis_client=plain, thread_id="bench plain", max_messages=HISTORY, ttl=3600)
    # The thread registry's index is in another slot: its ZADD goes to its node beside the script.
    no_registry = RedisChatMessageStore(
        redis_client=ours.redis_client, thread_id="bench off", max_messages=HISTORY, ttl=3600, registry=False
    )
    floor_key = "bench_floor"
    for key in (ours.redis_key, on_plain.redis_key, no_registry.redis_key, floor_key):
        await plain.delete(key)
        await plain.rpush(key, *filler)  # type: ignore[misc]

    async def floor() -> None:
        await plain.rpush(floor_key, *(json.dumps(m.to_dict(exclude_none=True)) for m in (user, assistant)))  # type: ignore[misc]

    variants: dict[str, Callable[[], Awaitable[object]]] = {
        "floor": floor,
        "ours": lambda: ours.add_messages([user, assistant]),
        "ours on plain RedisCluster": lambda: on_plain.add_messages([user, assistant]),
        "ours, registry=False": lambda: no_registry.add_messages([user, assistant]),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for operation in variants.values():
        await _time_block(operation, 50, [])  # warm-up: topology, script load, connections
    per_round = max(1, turns // rounds)
    for _ in range(rounds):
        for name, operation in variants.items():
            await _time_block(operation, per_round, samples[name])
    assert await ours.count() == HISTORY, "the store must hold exactly max_messages"
    await ours.aclose()
    await plain.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


def _connections(cluster: EmbeddedRedisCluster, before: list[set[str]]) -> list[int]:
    counts = []
    for node, known in zip(cluster.nodes, before, strict=True):
        with redis.Redis(host="127.0.0.1", port=node.port) as client:
            listed: Any = client.client_list()
            counts.append(sum(1 for entry in listed if entry["id"] not in known) - 1)  # minus this one
    return counts


def _client_ids(cluster: EmbeddedRedisCluster) -> list[set[str]]:
    ids = []
    for node in cluster.nodes:
        with redis.Redis(host="127.0.0.1", port=node.port) as client:
            listed: Any = client.client_list()
            ids.append({entry["id"] for entry in listed})
    return ids


async def thousand(cluster: EmbeddedRedisCluster, bounded: bool) -> dict[str, Any]:
    before = _client_ids(cluster)
    if bounded:
        factory = RedisChatMessageStore.factory(cluster.url, cluster=True, max_connections=32)
        client = factory.redis_client
    else:
        client = RedisCluster.from_url(cluster.url, max_connections=32)
        factory = RedisChatMessageStore.factory(redis_client=client)
    await client.ping()  # learn the topology first (redis-py routes badly before)
    stores = [factory.store(f"{'bounded' if bounded else 'plain'}_{n}") for n in range(1000)]
    user, assistant = _message("user", USER_TEXT), _message("assistant", ASSISTANT_TEXT)

    async def turn(store: RedisChatMessageStore) -> bool:
        try:
            await store.add_messages([user, assistant])
        except RedisStoreError:
            return False
        return True

    start = time.perf_counter()
    results = await asyncio.gather(*(turn(s) for s in stores))
    elapsed = time.perf_counter() - start
    connections = _connections(cluster, before)
    await factory.aclose()
    if not bounded:
        await client.aclose()
    return {"seconds": elapsed, "failed": results.count(False), "connections": connections}


async def main(turns: int) -> None:
    import agent_framework_redis_store as package

    with EmbeddedRedisCluster(appendonly=False) as cluster:
        medians = await latency(cluster.url, turns)
        loads = {"store factory, cluster=True": await thousand(cluster, True)}
        loads["plain RedisCluster"] = await thousand(cluster, False)

    print(f"\nRedis Cluster (3 masters), {package.GENERATION} Agent Framework generation\n")
    print(f"add_messages per turn (2 messages, history {HISTORY}, trimmed), median of {turns} turns per variant\n")
    print("| variant | median | / floor |")
    print("|---|---:|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.0f} µs | {value / medians['floor']:.2f}x |")
    print("\n1,000 threads append one turn at once, one shared client, max_connections=32\n")
    print("| client | wall time | failed turns | new connections per node |")
    print("|---|---:|---:|---|")
    for name, load in loads.items():
        print(f"| {name} | {load['seconds']:.2f} s | {load['failed']} | {load['connections']} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Redis Cluster latency and load against redis-py alone.")
    parser.add_argument("--turns", type=int, default=2000, help="timed turns per variant")
    asyncio.run(main(parser.parse_args().turns))
