"""What the thread registry costs an append, and how listing and purging scale, in one run.

Run (after ./scripts/test has created the environments; either generation works):

    .venv-current/bin/python benchmarks/registry.py [--sizes 1000,10000,100000] [--turns 2000]

Append: per-turn ``add_messages`` latency (two messages, ``max_messages=100`` so every
append also trims, sliding TTL) with the registry off (the baseline: the core store's
script), on, and on with labels. Blocks of the three are interleaved so drift on a busy
machine hits all alike; figures are medians of per-call latencies. The target is one
round trip and at most 1.10x the baseline.

Scale: for each size N, N threads are written through real stores (10 of them labelled
``user=alice``, the others spread over 997 users; one server per size, alice's page timed
at all sizes in interleaved rounds), then the script times a first page
(``limit=50``), alice's page (``list_threads(labels={"user": "alice"}, limit=20)``, read from
the label index, and the same page with the index's marker removed, which walks the whole
registry as 0.1 did), a full listing (``iter_threads``), ``stats()``,
``purge(dry_run=True)`` and ``purge()`` of every thread, with the peak Python memory of the
full listing (tracemalloc). The baseline for listing is the naive way without a registry, measured on
the same data: ``SCAN MATCH`` over the keyspace plus a pipelined ``LLEN`` per thread. It
yields less (ids and lengths, unordered) and must walk every key even for the newest 50.
Everything runs against a private EmbeddedRedis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio

# The same messages and timing loop as the append benchmark (this folder is on sys.path).
from append import ASSISTANT_TEXT, USER_TEXT, _message, _time_block

from agent_framework_redis_store import RedisChatMessageStore, RedisStoreFactory, RedisThreadRegistry
from agent_framework_redis_store.testing import EmbeddedRedis


async def measure_append(url: str, turns: int, rounds: int = 10) -> dict[str, float]:
    client = redis.asyncio.Redis.from_url(url)
    turn = [_message("user", USER_TEXT), _message("assistant", ASSISTANT_TEXT)]
    options: dict[str, Any] = {"redis_client": client, "max_messages": 100, "ttl": 3600}
    variants = {
        "baseline": RedisChatMessageStore(thread_id="append_off", registry=False, **options),
        "registry": RedisChatMessageStore(thread_id="append_on", **options),
        "registry+labels": RedisChatMessageStore(
            thread_id="append_labels", labels={"user": "alice", "tenant": "acme"}, **options
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for store in variants.values():  # warm-up: script load, connection, a full history to trim
        for _ in range(60):
            await store.add_messages(turn)
    before = (await client.info("commandstats"))["cmdstat_evalsha"]["calls"]
    per_round = max(1, turns // rounds)
    for _ in range(rounds):
        for name, store in variants.items():
            await _time_block(lambda store=store: store.add_messages(turn), per_round, samples[name])
    evalsha = (await client.info("commandstats"))["cmdstat_evalsha"]["calls"] - before
    assert evalsha == per_round * rounds * len(variants), "every append must be exactly one EVALSHA"
    for store in variants.values():
        assert await store.count() == 100
    await client.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


async def _populate(url: str, prefix: str, count: int) -> None:
    turn = [_message("user", USER_TEXT), _message("assistant", ASSISTANT_TEXT)]
    async with RedisStoreFactory(url, key_prefix=prefix, max_connections=64) as factory:
        for start in range(0, count, 512):
            stores = [
                RedisChatMessageStore(
                    thread_id=f"thread_{i:07d}",
                    key_prefix=prefix,
                    labels={"user": "alice" if i < 10 else f"user_{i % 997}"},
                    redis_client=factory.redis_client,
                )
                for i in range(start, min(start + 512, count))
            ]
            await asyncio.gather(*(store.add_messages(turn) for store in stores))


async def _scan_listing(client: redis.asyncio.Redis, prefix: str) -> int:
    """The naive listing without a registry: SCAN the keyspace, LLEN each thread list."""
    found = 0
    cursor = 0
    while True:
        cursor, keys = await client.scan(cursor, match=f"{prefix}:{{*", count=1000)
        lists = [k for k in keys if k[-1:] in (b"}", "}")]
        pipe = client.pipeline(transaction=False)
        for key in lists:
            pipe.llen(key)
        found += sum(1 for length in await pipe.execute() if length)
        if cursor == 0:
            return found


async def _timed(operation: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await operation()
    return time.perf_counter() - start, result


async def measure_user_pages(urls: dict[int, str], rounds: int = 20, per_round: int = 10) -> dict[int, float]:
    """Median ms of alice's page at each size, timed in interleaved rounds (one server per size)."""
    clients = {size: redis.asyncio.Redis.from_url(url) for size, url in urls.items()}
    registries = {size: RedisThreadRegistry(redis_client=c, key_prefix=f"bench{size}") for size, c in clients.items()}
    samples: dict[int, list[float]] = {size: [] for size in urls}
    for _ in range(rounds):
        for size, registry in registries.items():
            for _ in range(per_round):
                elapsed, page = await _timed(lambda r=registry: r.list_threads(labels={"user": "alice"}, limit=20))
                assert len(page.threads) == 10
                samples[size].append(elapsed)
    for client in clients.values():
        await client.aclose()
    return {size: statistics.median(values) * 1000 for size, values in samples.items()}


async def measure_scale(url: str, size: int) -> dict[str, float]:
    prefix = f"bench{size}"
    client = redis.asyncio.Redis.from_url(url)
    registry = RedisThreadRegistry(redis_client=client, key_prefix=prefix)

    firsts = []
    for _ in range(100):
        elapsed, page = await _timed(lambda: registry.list_threads(limit=50))
        assert len(page.threads) == 50
        firsts.append(elapsed)

    async def list_all() -> int:
        count = 0
        async for _ in registry.iter_threads():
            count += 1
        return count

    tracemalloc.start()
    listed = await list_all()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert listed == size
    list_s, listed = await _timed(list_all)
    assert listed == size

    async def alice_page() -> int:
        return len((await registry.list_threads(labels={"user": "alice"}, limit=20)).threads)

    # The same page without the label index (as before it existed): a walk of the whole registry.
    marker = registry.keyspace.labels_complete
    await client.delete(marker)
    walks = []
    for _ in range(3 if size > 10_000 else 10):
        elapsed, alice = await _timed(alice_page)
        assert alice == 10
        walks.append(elapsed)
    await client.set(marker, "complete")
    scan_s, scanned = await _timed(lambda: _scan_listing(client, prefix))
    assert scanned == size
    stats_s, stats = await _timed(registry.stats)
    assert stats.threads == size
    registry_bytes = int(await client.memory_usage(f"{prefix}:registry") or 0)
    meta_bytes = int(await client.memory_usage(f"{prefix}:{{thread_0000001}}:meta") or 0)
    dry_s, dry = await _timed(lambda: registry.purge(older_than=0, dry_run=True))
    assert dry.purged == size
    purge_s, purged = await _timed(lambda: registry.purge(older_than=0))
    assert purged.purged == size
    assert await client.zcard(f"{prefix}:registry") == 0
    await client.aclose()
    return {
        "first_page_ms": statistics.median(firsts) * 1000,
        "list_s": list_s,
        "user_page_scan_ms": statistics.median(walks) * 1000,
        "scan_s": scan_s,
        "stats_s": stats_s,
        "dry_s": dry_s,
        "purge_s": purge_s,
        "peak_kib": peak / 1024,
        "bytes_per_thread": meta_bytes + registry_bytes / size,
    }


async def main(sizes: list[int], turns: int) -> dict[str, Any]:
    import agent_framework_redis_store as package

    with contextlib.ExitStack() as stack:
        append = await measure_append(stack.enter_context(EmbeddedRedis()).url, turns)
        # One server per size, all populated first, so that a user's page is timed at every size
        # in interleaved rounds: drift on a busy machine hits all sizes alike.
        urls = {size: stack.enter_context(EmbeddedRedis()).url for size in sizes}
        populate_s: dict[int, float] = {}
        for size, url in urls.items():
            populate_s[size], _ = await _timed(lambda u=url, n=size: _populate(u, f"bench{n}", n))
        pages = await measure_user_pages(urls)
        scale = {
            size: await measure_scale(url, size) | {"populate_s": populate_s[size], "user_page_ms": pages[size]}
            for size, url in urls.items()
        }

    print(f"\nadd_messages per turn (2 messages, trim to 100, sliding TTL), {package.GENERATION} generation,")
    print(f"median of {turns} turns per variant, interleaved; every append is one EVALSHA (checked)\n")
    print("| variant | per turn | ratio to registry off |")
    print("|---|---:|---:|")
    for name, value in append.items():
        print(f"| {name} | {value:.0f} µs | **{value / append['baseline']:.3f}x** |")

    print("\nlisting and purging N threads (rates in threads per second)\n")
    print(
        "| threads | newest 50 | newest 50 by SCAN | SCAN / registry | alice's page (label index) "
        "| alice's page (registry walk, 0.1) | list all "
        "| SCAN+LLEN all | list all / SCAN | stats | purge dry-run | purge | peak memory of list all "
        "| registry bytes per thread |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, r in scale.items():
        print(
            f"| {size:,} | {r['first_page_ms']:.2f} ms | {r['scan_s'] * 1000:,.0f} ms "
            f"| **{r['scan_s'] * 1000 / r['first_page_ms']:,.0f}x** "
            f"| **{r['user_page_ms']:.2f} ms** | {r['user_page_scan_ms']:,.0f} ms "
            f"| {size / r['list_s']:,.0f}/s "
            f"| {size / r['scan_s']:,.0f}/s | **{r['scan_s'] / r['list_s']:.2f}x** | {size / r['stats_s']:,.0f}/s "
            f"| {size / r['dry_s']:,.0f}/s | {size / r['purge_s']:,.0f}/s | {r['peak_kib']:,.0f} KiB "
            f"| {r['bytes_per_thread']:.0f} B |"
        )
    smallest = min(scale, default=0)
    if smallest:
        print(f"\nper-thread cost relative to {smallest:,} threads (1.00 = scales linearly)\n")
        print("| threads | list all | purge | first page | alice's page |")
        print("|---:|---:|---:|---:|---:|")
        base = scale[smallest]
        for size, r in scale.items():
            print(
                f"| {size:,} | {(r['list_s'] / size) / (base['list_s'] / smallest):.2f}x "
                f"| {(r['purge_s'] / size) / (base['purge_s'] / smallest):.2f}x "
                f"| {r['first_page_ms'] / base['first_page_ms']:.2f}x "
                f"| **{r['user_page_ms'] / base['user_page_ms']:.2f}x** |"
            )
        largest = scale[max(scale)]
        print(
            f"\nalice's page at {max(scale):,} threads: {largest['user_page_ms'] / base['user_page_ms']:.2f}x "
            f"the page at {smallest:,} (target: within 2x, a few ms)"
        )
    worst = max(append["registry"], append["registry+labels"]) / append["baseline"]
    print(f"\nworst append ratio with the registry: {worst:.3f}x (target: at most 1.10x)")
    results = {"append_us": append, "scale": {str(k): v for k, v in scale.items()}}
    out = Path(__file__).parent / "results" / f"registry-{package.GENERATION}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Registry cost per append; list and purge throughput.")
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated thread counts")
    parser.add_argument("--turns", type=int, default=2000, help="timed appends per variant")
    args = parser.parse_args()
    results = asyncio.run(main([int(s) for s in args.sizes.split(",") if s], args.turns))
    append = results["append_us"]
    sys.exit(0 if max(append["registry"], append["registry+labels"]) / append["baseline"] <= 1.10 else 1)
