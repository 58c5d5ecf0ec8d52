"""Per-turn save and load through the 1.x HistoryProvider API: ours, upstream's, and the floor.

Run (makes a separate .venv-bench with agent-framework-redis and matplotlib; the test
environments stay as they are):

    UV_PROJECT_ENVIRONMENT=.venv-bench uv run --locked --group bench python benchmarks/provider.py

For each history size a session is pre-filled with that many messages for each variant,
on one private redis-server started here. Then:

* save: ``save_messages(session_id, [user, assistant])``, one new turn per call. After each
  timed call the list is trimmed back to the history size (untimed, from the old end), so
  every call sees the same history length.
* load: ``get_messages(session_id)``, the whole history.

Variants: ``RedisChatHistoryProvider`` (ours, on the same plain redis-py client as the
floor; its default bounded ``BlockingConnectionPool`` adds some 15 µs per call on a 2-core
machine); upstream's ``RedisHistoryProvider`` (agent-framework-redis, default scoped keys,
its own client); the floor, raw redis-py doing the least any
provider must do in one round trip: for save, the framework's ``to_dict()`` + ``json.dumps``
of the two messages and one ``RPUSH``; for load, one ``LRANGE`` and ``json.loads`` +
``Message.from_dict`` per entry. The variants take turns call by call so drift on a busy
machine hits all alike; figures are medians. Prints a Markdown table of ratios, writes
``benchmarks/results/provider.json`` and draws ``benchmarks/results/provider.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio
from agent_framework import Message

from agent_framework_redis_store import RedisChatHistoryProvider, thread_key
from agent_framework_redis_store.testing import EmbeddedRedis

SIZES = [10, 100, 1_000, 10_000]
RESULTS = Path(__file__).parent / "results"
USER_TEXT = "Can you remind me which Python libraries we discussed for neural networks last time? (turn {})"
ASSISTANT_TEXT = "We talked about PyTorch, TensorFlow and JAX; you preferred PyTorch for its eager mode. " * 2 + "({})"
# Timed calls per variant at each size: fewer where one call reads a long history.
SAVE_CALLS = {10: 800, 100: 800, 1_000: 800, 10_000: 800}
UPSTREAM_SAVE_CALLS = {10: 800, 100: 400, 1_000: 80, 10_000: 8}
LOAD_CALLS = {10: 800, 100: 400, 1_000: 120, 10_000: 24}
ROUNDS = 8


def turn(number: int) -> list[Message]:
    return [
        Message(role="user", contents=[USER_TEXT.format(number)]),
        Message(role="assistant", contents=[ASSISTANT_TEXT.format(number)], author_name="Bench"),
    ]


def encode(message: Message) -> str:
    return json.dumps(message.to_dict())


Variant = tuple[Callable[[], Awaitable[object]], int, Callable[[], Awaitable[object]]]


async def timed_round(variants: dict[str, Variant], quota: dict[str, int], samples: dict[str, list[float]]) -> None:
    """One round of ``quota[name]`` calls each; the variants take turns call by call."""
    # As timeit does: no garbage collection inside timed calls, so one variant's garbage
    # (upstream decodes the whole history on every save) never lands in another's timing.
    gc.collect()
    gc.disable()
    try:
        for call in range(max(quota.values())):
            for name, (operation, _, reset) in variants.items():
                if call < quota[name]:
                    start = time.perf_counter_ns()
                    await operation()
                    samples[name].append((time.perf_counter_ns() - start) / 1e6)  # milliseconds
                    await reset()
    finally:
        gc.enable()


async def measure(url: str, size: int, scale: float) -> dict[str, float]:
    from agent_framework_redis import RedisHistoryProvider  # pyright: ignore[reportMissingImports]

    raw = redis.asyncio.Redis.from_url(url)
    ours = RedisChatHistoryProvider(redis_client=raw)
    upstream = RedisHistoryProvider(redis_url=url, application_id="bench")
    session_id = f"bench_{size}"
    keys = {
        "ours": thread_key("chat_messages", session_id),
        "upstream": upstream._redis_key(session_id),
        "floor": f"floor:{size}",
    }
    filler = [encode(m) for number in range(size // 2) for m in turn(number)]
    for key in keys.values():
        await raw.delete(key)
        for start in range(0, size, 1000):
            await raw.rpush(key, *filler[start : start + 1000])

    turns = iter(turn(size + number) for number in range(1_000_000))

    def trimmer(key: str) -> Callable[[], Awaitable[object]]:
        async def trim() -> None:
            await raw.ltrim(key, -size, -1)

        return trim

    async def nothing() -> None:
        pass

    async def floor_save() -> None:
        await raw.rpush(keys["floor"], *(encode(m) for m in next(turns)))

    async def floor_load() -> list[Message]:
        return [Message.from_dict(json.loads(entry)) for entry in await raw.lrange(keys["floor"], 0, -1)]

    variants: dict[str, Variant] = {
        "save ours": (lambda: ours.save_messages(session_id, next(turns)), SAVE_CALLS[size], trimmer(keys["ours"])),
        "save upstream": (
            lambda: upstream.save_messages(session_id, next(turns)),
            UPSTREAM_SAVE_CALLS[size],
            trimmer(keys["upstream"]),
        ),
        "save floor": (floor_save, SAVE_CALLS[size], trimmer(keys["floor"])),
        "load ours": (lambda: ours.get_messages(session_id), LOAD_CALLS[size], nothing),
        "load upstream": (lambda: upstream.get_messages(session_id), LOAD_CALLS[size], nothing),
        "load floor": (floor_load, LOAD_CALLS[size], nothing),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    await timed_round(variants, dict.fromkeys(variants, 2), {name: [] for name in variants})  # warm-up
    quota = {name: max(1, int(calls * scale) // ROUNDS) for name, (_, calls, _) in variants.items()}
    for _ in range(ROUNDS):
        await timed_round(variants, quota, samples)

    assert len(await ours.get_messages(session_id)) == size
    assert len(await upstream.get_messages(session_id)) == size
    await ours.aclose()  # borrowed client: closed below
    await upstream.aclose()
    await raw.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


def report(results: dict[int, dict[str, float]]) -> bool:
    print("\nPer-turn save (2 messages) and full load through the HistoryProvider API, median ms;")
    print("ratios: ours / floor, upstream / ours (how many times slower upstream is)\n")
    print("| history | save ours | save upstream | save floor | ours / floor | upstream / ours "
          "| load ours | load upstream | load floor | ours / floor | upstream / ours |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, r in results.items():
        print(
            f"| {size:,} | {r['save ours']:.3f} | {r['save upstream']:.3f} | {r['save floor']:.3f} "
            f"| **{r['save ours'] / r['save floor']:.2f}x** | **{r['save upstream'] / r['save ours']:.0f}x** "
            f"| {r['load ours']:.3f} | {r['load upstream']:.3f} | {r['load floor']:.3f} "
            f"| **{r['load ours'] / r['load floor']:.2f}x** | {r['load upstream'] / r['load ours']:.2f}x |"
        )
    flat = results[SIZES[-1]]["save ours"] / results[SIZES[0]]["save ours"]
    faster = results[1_000]["save upstream"] / results[1_000]["save ours"]
    load = max(r["load ours"] / r["load floor"] for r in results.values())
    checks = [
        (f"save cost flat: ours at {SIZES[-1]:,} / ours at {SIZES[0]:,} = {flat:.2f}x", flat <= 1.5),
        (f"save at 1,000 messages: upstream / ours = {faster:.0f}x (target: at least 50x)", faster >= 50),
        (f"load: worst ours / floor = {load:.2f}x (target: at most 1.3x)", load <= 1.3),
    ]
    print()
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'MISS'} {text}")
    return all(ok for _, ok in checks)


def draw(results: dict[int, dict[str, float]], path: Path) -> None:
    import matplotlib  # pyright: ignore[reportMissingImports]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pyright: ignore[reportMissingImports]

    sizes = list(results)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, operation in zip(axes, ["save", "load"], strict=True):
        for variant, style in [("ours", "o-"), ("upstream", "s--"), ("floor", "^:")]:
            axis.plot(sizes, [results[s][f"{operation} {variant}"] for s in sizes], style, label=variant)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("stored messages in the session")
        axis.set_ylabel("median ms per call")
        axis.set_title(f"{operation}_messages" if operation == "save" else "get_messages (whole history)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle("RedisChatHistoryProvider vs upstream RedisHistoryProvider vs one-round-trip floor")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


async def main(scale: float) -> bool:
    with EmbeddedRedis() as server:
        results = {size: await measure(server.url, size, scale) for size in SIZES}
    ok = report(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "provider.json").write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))
    draw(results, RESULTS / "provider.png")
    print(f"\nchart: {RESULTS / 'provider.png'}")
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of timed calls")
    sys.exit(0 if asyncio.run(main(parser.parse_args().scale)) else 1)
