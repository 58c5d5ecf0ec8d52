"""What telemetry costs a turn: append and load with no SDK, against the same code with the instrumentation removed.

Run (after ./scripts/test has created the environments; either generation works):

    .venv-current/bin/python benchmarks/telemetry.py [--turns 2000]

Three variants of the same store on the same server and client, in one run:

* removed: the instrumentation taken out: every traced method replaced by the original it
  wraps (``__wrapped__``) and the storage hooks (``current_operation``, ``count_round_trips``)
  by built-ins that do nothing, which is what the store cost before telemetry existed;
* no SDK: the package as shipped, with no OpenTelemetry SDK configured (the default for an
  application that does not set one up);
* SDK: an SDK configured (``configure_telemetry(tracer_provider=..., meter_provider=...)``: a
  ``BatchSpanProcessor`` whose exporter drops the spans, and a metric reader), for information.

Append: ``add_messages`` of one user and one assistant message (``max_messages=100``, so every
append also trims). Load: ``list_messages()`` of a 20-message thread. Blocks of the variants
are interleaved so drift on a busy machine hits all alike; figures are medians of per-call
latencies, the ratios are to "removed" from the same run.

A turn's latency is dominated by its round trip, so the ratio can only show that no-SDK
telemetry costs less than the noise. The fixed cost is therefore also measured alone, with
no server: a traced no-op coroutine against the bare one, and each storage hook by itself
(minimum of several repeats, in nanoseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis.asyncio

# The same messages and timing loop as the append benchmark (this folder is on sys.path).
from append import ASSISTANT_TEXT, USER_TEXT, _message, _time_block
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import agent_framework_redis_store as package
from agent_framework_redis_store import RedisChatMessageStore, configure_telemetry
from agent_framework_redis_store._core import lua, thread
from agent_framework_redis_store._core.telemetry import count_round_trips, current_operation, traced
from agent_framework_redis_store.testing import EmbeddedRedis

VARIANTS = ("removed", "no SDK", "SDK")


class _Dropped(SpanExporter):
    """An exporter that sends nowhere: the SDK's own cost, without a collector's."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def _traced_methods() -> list[tuple[type, str]]:
    found = []
    for cls in (RedisChatMessageStore, thread.ThreadStorage):
        for name, value in vars(cls).items():
            if callable(value) and hasattr(value, "__wrapped__"):
                found.append((cls, name))
    return found


@contextmanager
def instrumentation_removed() -> Iterator[None]:
    """The store as it was before telemetry: original methods, hooks that do nothing."""
    methods = {(cls, name): getattr(cls, name) for cls, name in _traced_methods()}
    hooks = [
        (thread, "current_operation", type(None)),  # NoneType() is None: "no operation", in C
        (thread, "count_round_trips", int),  # int() does nothing worth a name, in C
        (lua, "count_round_trips", int),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in hooks]
    try:
        for (cls, name), traced in methods.items():
            setattr(cls, name, traced.__wrapped__)
        for module, name, stub in hooks:
            setattr(module, name, stub)
        yield
    finally:
        for (cls, name), traced in methods.items():
            setattr(cls, name, traced)
        for module, name, original in saved:
            setattr(module, name, original)


@contextmanager
def variant(name: str, sdk: dict[str, Any]) -> Iterator[None]:
    if name == "removed":
        with instrumentation_removed():
            yield
    elif name == "SDK":
        configure_telemetry(**sdk)
        try:
            yield
        finally:
            configure_telemetry()
    else:
        yield


async def measure(url: str, turns: int, rounds: int = 40) -> tuple[dict[str, dict[str, float]], int]:
    assert len(_traced_methods()) >= 5, "the traced methods were not found"
    client = redis.asyncio.Redis.from_url(url)
    turn = [_message("user", USER_TEXT), _message("assistant", ASSISTANT_TEXT)]
    appender = RedisChatMessageStore(redis_client=client, thread_id="bench_append", max_messages=100, ttl=3600)
    reader = RedisChatMessageStore(redis_client=client, thread_id="bench_load", max_messages=100, ttl=3600)
    for _ in range(10):
        await reader.add_messages(turn)
    sdk, exporter = _sdk()

    async def append() -> None:
        await appender.add_messages(turn)

    async def load() -> None:
        await reader.list_messages()

    operations: dict[str, Callable[[], Awaitable[None]]] = {"append": append, "load": load}
    samples = {op: {name: [] for name in VARIANTS} for op in operations}
    for name in VARIANTS:  # warm-up: scripts loaded, connection open, SDK instruments made
        with variant(name, sdk):
            for operation in operations.values():
                await _time_block(operation, 50, [])
    per_round = max(1, turns // rounds)
    for _ in range(rounds):
        for op, operation in operations.items():
            for name in VARIANTS:
                with variant(name, sdk):
                    await _time_block(operation, per_round, samples[op][name])
    await client.aclose()
    sdk["tracer_provider"].shutdown()  # flushes: every SDK-variant call made one span
    sdk["meter_provider"].shutdown()
    medians = {op: {name: statistics.median(values) for name, values in by.items()} for op, by in samples.items()}
    return medians, exporter.spans


def _sdk() -> tuple[dict[str, Any], _Dropped]:
    exporter = _Dropped()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {"tracer_provider": tracer_provider, "meter_provider": meter_provider}, exporter


async def fixed_cost_ns(calls: int = 50_000, repeats: int = 7) -> dict[str, float]:
    """Nanoseconds per call, no server: the traced wrapper (no SDK, and SDK) and each storage hook."""

    async def bare() -> None:
        return None

    wrapped = traced("save")(bare)

    async def per_call(coroutine_function: Callable[[], Awaitable[None]]) -> float:
        start = time.perf_counter_ns()
        for _ in range(calls):
            await coroutine_function()
        return (time.perf_counter_ns() - start) / calls

    sdk, _ = _sdk()
    timings: dict[str, list[float]] = {"bare": [], "no SDK": [], "SDK": []}
    for _ in range(repeats):  # interleaved, the minimum of each
        timings["bare"].append(await per_call(bare))
        timings["no SDK"].append(await per_call(wrapped))
        with variant("SDK", sdk):
            timings["SDK"].append(await per_call(wrapped))
    sdk["tracer_provider"].shutdown()
    sdk["meter_provider"].shutdown()
    hook = {
        name: min(timeit.repeat(function, number=calls, repeat=repeats)) / calls * 1e9
        for name, function in (("current_operation", current_operation), ("count_round_trips", count_round_trips))
    }
    bare_ns = min(timings["bare"])
    return {
        "traced call": min(timings["no SDK"]) - bare_ns,
        "traced call, SDK": min(timings["SDK"]) - bare_ns,
        **hook,
    }


async def main(turns: int) -> float:
    """Prints the tables; returns the fixed cost's largest share of a call, in percent."""
    fixed = await fixed_cost_ns()
    with EmbeddedRedis() as server:
        results, spans = await measure(server.url, turns)
    print(f"\nTelemetry cost, {package.GENERATION} Agent Framework generation, median of {turns} calls per")
    print("operation and variant, interleaved; ratios to the same code with the instrumentation removed\n")
    print("| operation | removed | no SDK | **no SDK / removed** | SDK configured | SDK / removed |")
    print("|---|---:|---:|---:|---:|---:|")
    labels = {"append": "append (2 messages)", "load": "load (20 messages)"}
    for op, r in results.items():
        print(
            f"| {labels[op]} | {r['removed']:.0f} µs | {r['no SDK']:.0f} µs | **{r['no SDK'] / r['removed']:.3f}x** "
            f"| {r['SDK']:.0f} µs | {r['SDK'] / r['removed']:.2f}x |"
        )
    # Per call: a save runs one script (one count) and asks for the operation once; a load twice.
    save_ns = fixed["traced call"] + fixed["current_operation"] + fixed["count_round_trips"]
    load_ns = fixed["traced call"] + 2 * fixed["current_operation"] + fixed["count_round_trips"]
    print(
        f"\nFixed cost with no SDK, alone (no server): traced call {fixed['traced call']:.0f} ns, "
        f"current_operation() {fixed['current_operation']:.0f} ns, count_round_trips() "
        f"{fixed['count_round_trips']:.0f} ns;\nan append pays about {save_ns:.0f} ns "
        f"({save_ns / 10 / results['append']['removed']:.2f}% of its median), a load {load_ns:.0f} ns "
        f"({load_ns / 10 / results['load']['removed']:.2f}%).\nWith an SDK, the span and the measurement of a "
        f"traced no-op cost {fixed['traced call, SDK'] / 1000:.1f} µs (plus the attributes of a real operation)."
    )
    worst = max(r["no SDK"] / r["removed"] for r in results.values())
    share = max(save_ns / 10 / results["append"]["removed"], load_ns / 10 / results["load"]["removed"])
    print(
        f"\nworst no SDK / removed: {worst:.3f}x (the run's noise: a turn's latency varies by more than telemetry's"
        f" fixed cost);\nfixed cost at most {share:.2f}% of a call (target: under 1%); spans exported by the SDK"
        f" variant: {spans}"
    )
    out = Path(__file__).parent / "results" / f"telemetry-{package.GENERATION}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({**results, "fixed_cost_ns": fixed}, indent=2))
    return share


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Telemetry cost: append and load with and without instrumentation.")
    parser.add_argument("--turns", type=int, default=2000, help="timed calls per operation and variant")
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(main(args.turns)) < 1.0 else 1)
