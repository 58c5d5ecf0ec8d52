"""What encryption at rest costs per turn: the same store with and without ``encryption=``.

Run (after ./scripts/test has created the environments; either generation works):

    .venv-current/bin/python benchmarks/encryption.py [--turns 2000]

A thread holding 100 messages (``max_messages=100``, so each append also trims) takes
one user and one assistant message per turn, then the turn's history is read back
(``list_messages()``, all 100). Both stores run on the same server, in interleaved blocks
so drift on a busy machine hits both alike; figures are medians of per-call latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys

import redis.asyncio
from append import ASSISTANT_TEXT, USER_TEXT, _message, _time_block

from agent_framework_redis_store import AESGCMEncryption, RedisChatMessageStore
from agent_framework_redis_store.testing import EmbeddedRedis

HISTORY = 100


async def measure(url: str, turns: int, rounds: int = 10) -> dict[str, float]:
    client = redis.asyncio.Redis.from_url(url)
    encryption = AESGCMEncryption({"k1": os.urandom(32)}, current="k1")
    plain = RedisChatMessageStore(redis_client=client, thread_id="bench_plain", max_messages=HISTORY, ttl=3600)
    sealed = RedisChatMessageStore(
        redis_client=client, thread_id="bench_sealed", max_messages=HISTORY, ttl=3600, encryption=encryption
    )
    turn = [_message("user", USER_TEXT), _message("assistant", ASSISTANT_TEXT)]
    for store in (plain, sealed):
        await store.clear()
        await store.add_messages(turn * (HISTORY // 2))

    samples: dict[str, list[float]] = {name: [] for name in ("append", "append_enc", "read", "read_enc")}
    operations = {
        "append": lambda: plain.add_messages(turn),
        "append_enc": lambda: sealed.add_messages(turn),
        "read": plain.list_messages,
        "read_enc": sealed.list_messages,
    }
    for operation in operations.values():
        await _time_block(operation, 50, [])  # warm-up: script load, connection
    per_round = max(1, turns // rounds)
    for _ in range(rounds):
        for name, operation in operations.items():
            await _time_block(operation, per_round, samples[name])
    sizes = [len(await client.lindex(store.redis_key, -1) or b"") for store in (plain, sealed)]  # type: ignore[misc]
    await client.aclose()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {**medians, "bytes": sizes[0], "bytes_enc": sizes[1]}


async def main(turns: int) -> dict[str, float]:
    with EmbeddedRedis() as server:
        r = await measure(server.url, turns)
    import agent_framework_redis_store as package

    print(f"\nencryption at rest (AES-256-GCM), {package.GENERATION} Agent Framework generation, history {HISTORY},")
    print(f"median of {turns} calls per variant\n")
    print("| operation | plain | encrypted | encrypted / plain |")
    print("|---|---:|---:|---:|")
    print(f"| add_messages (2 messages) | {r['append']:.0f} µs | {r['append_enc']:.0f} µs "
          f"| **{r['append_enc'] / r['append']:.2f}x** |")  # fmt: skip
    print(f"| list_messages ({HISTORY} messages) | {r['read']:.0f} µs | {r['read_enc']:.0f} µs "
          f"| **{r['read_enc'] / r['read']:.2f}x** |")  # fmt: skip
    print(f"| stored entry (assistant message) | {r['bytes']:.0f} B | {r['bytes_enc']:.0f} B "
          f"| {r['bytes_enc'] / r['bytes']:.2f}x |")  # fmt: skip
    return r


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Per-turn cost of encryption at rest.")
    parser.add_argument("--turns", type=int, default=2000, help="timed calls per variant")
    args = parser.parse_args()
    asyncio.run(main(args.turns))
    sys.exit(0)
