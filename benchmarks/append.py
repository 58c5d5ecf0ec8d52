"""Per-turn ``add_messages`` latency against the one-round-trip floor, measured in one run.

Run (after ./scripts/test has created the environments; either generation works):

    .venv-current/bin/python benchmarks/append.py [--turns 2000]

For each history size a thread is pre-filled, then every turn appends one user and one
assistant message with ``max_messages`` equal to the history size (so each append also
trims) and a sliding TTL. The floor is raw redis-py appending the same two messages in
one round trip: the framework's own ``to_dict()`` + ``json.dumps``, then one ``RPUSH``,
on the same kind of client and the same server. "RPUSH only" (pre-encoded payloads, no
framework work at all) is shown too.
"Upstream pattern" replays what the upstream legacy store does per turn (encode, then
MULTI/RPUSH/EXEC, LLEN and LTRIM: three round trips) with raw redis-py, for context.
Blocks of the three are interleaved so drift on a busy machine hits all of them alike;
the figures are medians of per-call latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio

from agent_framework_redis_store import RedisChatMessageStore
from agent_framework_redis_store._core.codec import encode_message, message_from_dict
from agent_framework_redis_store.testing import EmbeddedRedis

SIZES = [10, 100, 1_000, 10_000]
USER_TEXT = "Can you remind me which Python libraries we discussed for neural networks last time? " * 1
ASSISTANT_TEXT = "We talked about PyTorch, TensorFlow and JAX; you preferred PyTorch for its eager mode. " * 3


def _message(role: str, text: str):
    return message_from_dict({"role": role, "contents": [{"type": "text", "text": text}]})


async def _time_block(operation: Callable[[], Awaitable[object]], count: int, into: list[float]) -> None:
    for _ in range(count):
        start = time.perf_counter_ns()
        await operation()
        into.append((time.perf_counter_ns() - start) / 1_000)  # microseconds


async def measure(url: str, size: int, turns: int, rounds: int = 10) -> dict[str, float]:
    client = redis.asyncio.Redis.from_url(url)
    user, assistant = _message("user", USER_TEXT), _message("assistant", ASSISTANT_TEXT)
    filler = [encode_message(user if i % 2 == 0 else assistant) for i in range(size)]
    store = RedisChatMessageStore(redis_client=client, thread_id=f"bench_{size}", max_messages=size, ttl=3600)
    floor_key, upstream_key = f"bench_floor_{size}", f"bench_upstream_{size}"
    for key in (store.redis_key, floor_key, upstream_key):
        await client.delete(key)
        for start in range(0, size, 1000):
            await client.rpush(key, *filler[start : start + 1000])
    payloads = [encode_message(user), encode_message(assistant)]

    async def rpush_only() -> None:
        await client.rpush(floor_key, *payloads)

    async def floor() -> None:
        await client.rpush(floor_key, *(json.dumps(m.to_dict(exclude_none=True)) for m in (user, assistant)))

    async def ours() -> None:
        await store.add_messages([user, assistant])

    async def upstream_pattern() -> None:
        encoded = [json.dumps(m.to_dict(exclude_none=True)) for m in (user, assistant)]
        async with client.pipeline(transaction=True) as pipe:
            pipe.rpush(upstream_key, *encoded)
            await pipe.execute()
        if await client.llen(upstream_key) > size:
            await client.ltrim(upstream_key, -size, -1)

    samples: dict[str, list[float]] = {"rpush": [], "floor": [], "ours": [], "upstream": []}
    await _time_block(ours, 50, [])  # warm-up: script load, connection
    per_round = max(1, turns // rounds)
    for _ in range(rounds):
        await _time_block(rpush_only, per_round, samples["rpush"])
        await _time_block(floor, per_round, samples["floor"])
        await _time_block(ours, per_round, samples["ours"])
        await _time_block(upstream_pattern, per_round, samples["upstream"])
    assert await client.llen(store.redis_key) == size, "the store must hold exactly max_messages"
    await client.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


async def main(turns: int) -> dict[int, dict[str, float]]:
    with EmbeddedRedis() as server:
        results = {size: await measure(server.url, size, turns) for size in SIZES}
    import agent_framework_redis_store as package

    print(f"\nadd_messages per turn (2 messages), {package.GENERATION} Agent Framework generation,")
    print(f"median of {turns} turns per size and variant; ratios to the floor (encode + 1 RPUSH)\n")
    columns = ["history", "RPUSH only", "floor", "ours", "ours / floor", "ours / RPUSH only", "upstream pattern"]
    print("| " + " | ".join([*columns, "upstream / floor"]) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, r in results.items():
        print(
            f"| {size:,} | {r['rpush']:.0f} µs | {r['floor']:.0f} µs | {r['ours']:.0f} µs "
            f"| **{r['ours'] / r['floor']:.2f}x** | {r['ours'] / r['rpush']:.2f}x "
            f"| {r['upstream']:.0f} µs | {r['upstream'] / r['floor']:.2f}x |"
        )
    worst = max(r["ours"] / r["floor"] for r in results.values())
    print(f"\nworst ours / floor: {worst:.2f}x (target: at most 1.5x)")
    out = Path(__file__).parent / "results" / f"append-{package.GENERATION}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Per-turn add_messages latency against the one-round-trip floor.")
    parser.add_argument("--turns", type=int, default=2000, help="timed turns per size and variant")
    args = parser.parse_args()
    results = asyncio.run(main(args.turns))
    sys.exit(0 if max(r["ours"] / r["floor"] for r in results.values()) <= 1.5 else 1)
