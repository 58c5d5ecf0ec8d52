"""Long conversations: what a windowed load costs, what a summary saves, what group-safe trimming costs.

Run (after ./scripts/test has created the environments):

    .venv-current/bin/python benchmarks/context.py [--turns 1000]
    UV_PROJECT_ENVIRONMENT=.venv-bench uv run --locked --group bench python benchmarks/context.py   # + the PNG chart

Three measurements, each against a baseline taken in the same run, on one private redis-server:

1. Load per turn with a 40-message window (``context_messages=40``) from threads of 100 and
   10,000 messages, beside a full load (every message) of the same threads. Blocks are
   interleaved so that drift on a busy machine hits every variant alike; medians.
2. Prompt size over a 200-turn conversation with and without ``SummaryCompaction``
   (trigger 40 messages, keep 10; a summarizer whose summary is a fixed 600 characters):
   messages and estimated tokens (4 characters a token) the model is sent, per turn.
3. ``add_messages`` (2 messages, trimming each turn, sliding TTL) with group-safe trimming
   against the append script of 0.1 (a plain LTRIM, kept below verbatim) run the same way.
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
from types import SimpleNamespace
from typing import Any

import redis.asyncio

from agent_framework_redis_store import RedisChatMessageStore, SummaryCompaction
from agent_framework_redis_store._core.codec import encode_message, message_from_dict
from agent_framework_redis_store._core.lua import Script
from agent_framework_redis_store.testing import EmbeddedRedis

RESULTS = Path(__file__).parent / "results"
USER = "Could you look at the numbers from yesterday's run and tell me whether the cache helped? " * 2
ASSISTANT = "Yes: the hit rate went from 61% to 87%, and the median latency fell from 41 ms to 12 ms. " * 3


def message(role: str, text: str) -> Any:
    return message_from_dict({"role": role, "contents": [{"type": "text", "text": text}]})


def exchange(n: int) -> list[Any]:
    return [message("user", f"[{n}] {USER}"), message("assistant", f"[{n}] {ASSISTANT}")]


async def timed(operation: Callable[[], Awaitable[object]], count: int, into: list[float]) -> None:
    for _ in range(count):
        start = time.perf_counter_ns()
        await operation()
        into.append((time.perf_counter_ns() - start) / 1_000)  # microseconds


# -- 1. load per turn -------------------------------------------------------------------------


async def load(url: str, turns: int, rounds: int = 10) -> dict[str, float]:
    client = redis.asyncio.Redis.from_url(url)
    stores: dict[int, RedisChatMessageStore] = {}
    for size in (100, 10_000):
        writer = RedisChatMessageStore(redis_client=client, thread_id=f"load_{size}")
        for start in range(0, size, 1000):
            await writer.add_messages([m for n in range(start // 2, min(start + 1000, size) // 2) for m in exchange(n)])
        stores[size] = writer
    windowed = {size: RedisChatMessageStore(redis_client=client, thread_id=f"load_{size}", context_messages=40)
                for size in stores}  # fmt: skip
    variants: dict[str, Callable[[], Awaitable[object]]] = {
        "window 40, 100 stored": windowed[100].list_messages,
        "window 40, 10,000 stored": windowed[10_000].list_messages,
        "full load, 100 stored": stores[100].list_messages,
        "full load, 10,000 stored": stores[10_000].list_messages,
    }
    assert len(await windowed[10_000].list_messages()) == 40
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for operation in variants.values():
        await timed(operation, 5, [])  # warm-up
    for _ in range(rounds):
        for name, operation in variants.items():
            count = max(1, turns // rounds // (20 if name.startswith("full load, 10,000") else 1))
            await timed(operation, count, samples[name])
    await client.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


# -- 2. prompt size over a long conversation ------------------------------------------------------


class FixedSummarizer:
    """A summarizer whose summary is 600 characters, whatever it is sent (a model's is about that size)."""

    async def get_response(self, request: Any) -> Any:
        return SimpleNamespace(text="S" * 600)


def tokens(messages: list[Any]) -> int:
    return sum(max(1, len(encode_message(m)) // 4) for m in messages)


async def prompt_sizes(url: str, turns: int = 200) -> dict[str, list[tuple[int, int]]]:
    policy = SummaryCompaction(FixedSummarizer(), trigger_messages=40, keep_last_messages=10, background=False)
    plain = RedisChatMessageStore(url, thread_id="plain")
    compacted = RedisChatMessageStore(url, thread_id="compacted", compaction=policy)
    sizes: dict[str, list[tuple[int, int]]] = {"without compaction": [], "with compaction": []}
    for n in range(turns):
        for name, store in (("without compaction", plain), ("with compaction", compacted)):
            sent = await store.list_messages()  # what the model gets this turn
            sizes[name].append((len(sent), tokens(sent)))
            await store.add_messages(exchange(n))
            if store is compacted:
                await store.compact()
    assert len(await compacted.transcript()) == 2 * turns  # the transcript is whole
    await plain.aclose()
    await compacted.aclose()
    return sizes


def chart(sizes: dict[str, list[tuple[int, int]]], path: Path) -> bool:
    try:
        import matplotlib  # pyright: ignore[reportMissingImports]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # pyright: ignore[reportMissingImports]
    except ImportError:
        return False
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name, values in sizes.items():
        axis.plot(range(1, len(values) + 1), [t for _, t in values], label=name)
    axis.set_xlabel("turn")
    axis.set_ylabel("estimated prompt tokens of history")
    axis.set_title("History sent to the model over a 200-turn conversation")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


# -- 3. append cost ---------------------------------------------------------------------------

# The append script of agent-framework-redis-store 0.1 (no index, a plain LTRIM), with its
# registry part, as it ran before group-safe trimming.
PREVIOUS_APPEND = Script(
    "append_0_1",
    """
local messages_key, batches_key, meta_key, registry_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local max_messages, ttl_ms, token, token_score = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local labels, member, first = ARGV[6], ARGV[7], 8
if token ~= '' and redis.call('ZSCORE', batches_key, token) then
  return -1
end
local length = nil
for i = first, #ARGV, 1000 do
  length = redis.call('RPUSH', messages_key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if max_messages > 0 then
  length = length or redis.call('LLEN', messages_key)
  if length > max_messages then
    redis.call('LTRIM', messages_key, -max_messages, -1)
    length = max_messages
  end
end
if token ~= '' then
  redis.call('ZADD', batches_key, token_score, token)
  redis.call('ZREMRANGEBYRANK', batches_key, 0, -257)
end
local expire_ms = ttl_ms
if ttl_ms > 0 then
  redis.call('PEXPIRE', messages_key, ttl_ms)
else
  expire_ms = math.max(redis.call('PTTL', messages_key), 0)
end
if expire_ms > 0 and token ~= '' then
  redis.call('PEXPIRE', batches_key, expire_ms)
end
local now_ms = string.sub(token_score, 1, -4)
redis.call('HSETNX', meta_key, 'created', now_ms)
redis.call('HSET', meta_key, 'active', now_ms, 'count', length, 'ttl', ttl_ms)
if expire_ms > 0 then
  redis.call('PEXPIRE', meta_key, expire_ms)
end
redis.call('ZADD', registry_key, now_ms, member)
return length
""",
)


async def append(url: str, turns: int, size: int = 1_000, rounds: int = 10) -> dict[str, float]:
    client = redis.asyncio.Redis.from_url(url)
    ours = RedisChatMessageStore(redis_client=client, thread_id="append_ours", max_messages=size, ttl=3600)
    previous = RedisChatMessageStore(redis_client=client, thread_id="append_previous", max_messages=size, ttl=3600)
    batch = exchange(0)
    keys = [previous.redis_key, previous.redis_key + ":batches", previous.redis_key + ":meta", "chat_messages:registry"]
    counter = iter(range(10**9))

    async def previous_append() -> None:
        # What 0.1's add_messages did: encode, then the script, one round trip.
        payloads = [encode_message(m) for m in batch]
        args = [size, 3_600_000, f"t{next(counter)}", time.time_ns() // 1000, 0, "", "append_previous", *payloads]
        await PREVIOUS_APPEND.run(client, keys, args)

    async def ours_append() -> None:
        await ours.add_messages(batch)

    for operation in (ours_append, previous_append):  # fill both to max_messages: every turn trims
        for _ in range(size // 2 + 10):
            await operation()
    samples: dict[str, list[float]] = {"previous": [], "ours": []}
    per_round = max(1, turns // rounds)
    for _ in range(rounds):
        await timed(previous_append, per_round, samples["previous"])
        await timed(ours_append, per_round, samples["ours"])
    assert await ours.count() == size
    await client.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


async def main(turns: int) -> bool:
    with EmbeddedRedis() as server:
        loads = await load(server.url, turns)
        sizes = await prompt_sizes(server.url)
        appends = await append(server.url, turns)

    print("\n1. Load per turn (list_messages), median µs; window = context_messages=40\n")
    print("| variant | per turn | vs window at 100 stored |")
    print("|---|---:|---:|")
    base = loads["window 40, 100 stored"]
    for name, value in loads.items():
        print(f"| {name} | {value:,.0f} µs | {value / base:.2f}x |")
    window_ratio = loads["window 40, 10,000 stored"] / base
    print(f"\nwindowed load at 10,000 vs 100 stored: {window_ratio:.2f}x (target: within 1.3x); "
          f"full load at 10,000 is {loads['full load, 10,000 stored'] / loads['window 40, 10,000 stored']:.0f}x "
          "the windowed one")  # fmt: skip

    print("\n2. History sent to the model over 200 turns (messages / estimated tokens)\n")
    print("| turn | without compaction | with compaction |")
    print("|---:|---:|---:|")
    for turn in (1, 20, 40, 60, 100, 150, 200):
        (m1, t1), (m2, t2) = sizes["without compaction"][turn - 1], sizes["with compaction"][turn - 1]
        print(f"| {turn} | {m1} / {t1:,} | {m2} / {t2:,} |")
    total = {name: sum(t for _, t in values) for name, values in sizes.items()}
    saved = total["with compaction"] / total["without compaction"]
    print(f"\ntokens sent over the whole conversation: {total['with compaction']:,} with compaction, "
          f"{total['without compaction']:,} without ({saved:.2f}x)")  # fmt: skip
    drawn = chart(sizes, RESULTS / "context.png")
    print(
        "chart: benchmarks/results/context.png"
        if drawn
        else "chart: (matplotlib not installed: run with --group bench)"
    )

    append_ratio = appends["ours"] / appends["previous"]
    print("\n3. add_messages (2 messages, trimming every turn at 1,000 stored), median µs\n")
    print("| 0.1 (plain LTRIM) | group-safe trimming | ratio |")
    print("|---:|---:|---:|")
    print(f"| {appends['previous']:.0f} µs | {appends['ours']:.0f} µs | **{append_ratio:.2f}x** |")
    print("\n(target: within 1.1x)")

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "context.json").write_text(
        json.dumps({"load_us": loads, "prompt_sizes": sizes, "append_us": appends}, indent=1)
    )
    return window_ratio <= 1.3 and append_ratio <= 1.1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Windowed loads, summaries and group-safe trimming, measured.")
    parser.add_argument("--turns", type=int, default=1000, help="timed calls per variant")
    sys.exit(0 if asyncio.run(main(parser.parse_args().turns)) else 1)
