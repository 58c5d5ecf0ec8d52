"""Workflow checkpoints: ``RedisCheckpointStorage`` side by side with the framework's ``FileCheckpointStorage``.

Run (the bench environment has the 1.x framework and matplotlib)::

    UV_PROJECT_ENVIRONMENT=.venv-bench uv run --locked --group bench python benchmarks/checkpoints.py

A workflow gets 10, another 1,000 and a third 10,000 checkpoints in each storage, through
their own ``save``: Redis on one private redis-server started here, files in a temporary
directory on local disk. The timed checkpoints are what an agent workflow saves: an agent's
conversation of 10 messages of 25 to 60 words (``Message`` objects, as the framework's
``AgentExecutor`` keeps them), a message between executors and a pending request for a
person. The older checkpoints that fill the timelines carry no conversation, to keep the run
short; that flatters ``FileCheckpointStorage.get_latest``, which reads every file. Timed:

* save: one more checkpoint (deleted again untimed, so the count stays put);
* load: the newest checkpoint, by id;
* get_latest: ``get_latest(workflow_name=...)``.

Each count is its own workflow (and, for files, its own directory), all populated first; then
every operation on every storage at every count takes turns call by call, in rounds, so drift
on a busy machine hits all alike.

Then bytes per checkpoint for a few conversation lengths: the Redis body (plain, and with
``compression="zlib"``) against the same checkpoint's JSON file written by ``FileCheckpointStorage``.
Figures are medians. Prints Markdown tables, writes ``benchmarks/results/checkpoints.json`` and
draws ``benchmarks/results/checkpoints.png``. Exits non-zero if ``get_latest`` among 1,000
checkpoints costs more than twice what it costs among 10 (the issue's bar).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio
from agent_framework import FileCheckpointStorage, Message, WorkflowCheckpoint, WorkflowEvent, WorkflowMessage

from agent_framework_redis_store import RedisCheckpointStorage
from agent_framework_redis_store.testing import EmbeddedRedis

COUNTS = [10, 1_000, 10_000]
RESULTS = Path(__file__).parent / "results"
WORKFLOW = "bench"
# Messages in the agent's conversation of a timed checkpoint, and those sized in the bytes table.
CONVERSATION = 10
SIZED = [0, 10, 100]
# Timed calls per storage at each count; FileCheckpointStorage.get_latest reads every file.
CALLS = 200
FILE_LATEST_CALLS = {10: 100, 1_000: 5, 10_000: 2}
ROUNDS = 5
START = datetime(2025, 1, 1, tzinfo=UTC)

# Words for the conversation's text: varied like a real chat, so zlib gets no easier a job than it would.
WORDS = [
    "the",
    "a",
    "my",
    "your",
    "order",
    "refund",
    "kettle",
    "arrived",
    "broken",
    "cracked",
    "lid",
    "handle",
    "water",
    "leaking",
    "store",
    "delivery",
    "parcel",
    "customer",
    "service",
    "colleague",
    "approve",
    "approved",
    "draft",
    "amount",
    "euros",
    "days",
    "week",
    "account",
    "card",
    "bank",
    "transfer",
    "please",
    "thanks",
    "sorry",
    "help",
    "return",
    "label",
    "box",
    "address",
    "invoice",
    "receipt",
    "number",
    "photo",
    "warranty",
    "replace",
    "new",
    "shipping",
    "cost",
    "free",
    "again",
    "soon",
    "today",
    "tomorrow",
    "check",
    "status",
    "email",
    "phone",
    "wait",
    "confirm",
    "cancel",
    "instead",
]


def sentence(seed: int, words: int) -> str:
    picked = random.Random(seed).choices(WORDS, k=words)
    return " ".join(picked).capitalize() + "."


def conversation(length: int) -> list[Message]:
    return [
        Message(role="user", contents=[sentence(n, 25)])
        if n % 2 == 0
        else Message(role="assistant", contents=[sentence(n, 60)], author_name="RefundBot")
        for n in range(length)
    ]


def make_checkpoint(workflow: str, number: int, previous: str | None, length: int = CONVERSATION) -> WorkflowCheckpoint:
    """The ``number``-th checkpoint of ``workflow``: an agent's conversation, a message, a pending request."""
    messages = conversation(length)
    return WorkflowCheckpoint(
        workflow_name=workflow,
        graph_signature_hash="0" * 64,
        checkpoint_id=str(uuid.uuid4()),
        previous_checkpoint_id=previous,
        timestamp=(START + timedelta(milliseconds=number)).isoformat(),
        messages={"drafter": [WorkflowMessage(data=messages[-1:], source_id="drafter", target_id="approval")]},
        state={"_executor_state": {"drafter": {"cache": [], "full_conversation": messages}}},
        pending_request_info_events={
            "request-1": WorkflowEvent.request_info("request-1", "approval", sentence(number, 60), str)
        },
        iteration_count=number,
    )


async def populate(redis_store: RedisCheckpointStorage, files: FileCheckpointStorage, workflow: str, count: int) -> str:
    """Save ``count`` checkpoints of ``workflow`` into both storages; the id of the newest (the only one
    with a conversation)."""
    previous: str | None = None
    for start in range(0, count - 1, 500):
        batch = []
        for number in range(start, min(start + 500, count - 1)):
            batch.append(make_checkpoint(workflow, number, previous, length=0))
            previous = batch[-1].checkpoint_id
        # Many saves in flight at once (each Redis save is still one script call).
        await asyncio.gather(*(redis_store.save(c) for c in batch))
        await asyncio.gather(*(files.save(c) for c in batch))
    newest = make_checkpoint(workflow, count - 1, previous)
    await redis_store.save(newest)
    await files.save(newest)
    return newest.checkpoint_id


Operation = Callable[[], Awaitable[object]]
Variant = tuple[Operation, int, Operation]  # the timed call, how many, what runs untimed after each


async def timed_round(
    variants: dict[tuple[int, str], Variant],
    quota: dict[tuple[int, str], int],
    samples: dict[tuple[int, str], list[float]],
) -> None:
    """``quota`` calls per variant, taking turns call by call."""
    gc.collect()
    gc.freeze()  # the populated timelines are never scanned by the collections inside timed calls
    try:
        for call in range(max(quota.values())):
            for key, (operation, _, after) in variants.items():
                if call < quota[key]:
                    start = time.perf_counter_ns()
                    await operation()
                    samples[key].append((time.perf_counter_ns() - start) / 1e6)  # milliseconds
                    await after()
    finally:
        gc.unfreeze()


async def measure(url: str, directory: Path, scale: float) -> dict[int, dict[str, float]]:
    """Every operation on every storage at every count, in rounds, so drift on a busy machine hits all alike."""
    variants: dict[tuple[int, str], Variant] = {}
    directories: dict[int, FileCheckpointStorage] = {}
    async with RedisCheckpointStorage(url) as redis_store:
        for count in COUNTS:
            started = time.perf_counter()
            workflow = f"bench-{count}"
            # One directory per count: FileCheckpointStorage reads every file in its directory.
            files = directories[count] = FileCheckpointStorage(directory / workflow)
            newest = await populate(redis_store, files, workflow, count)
            print(f"{count:>6,} checkpoints saved in each storage in {time.perf_counter() - started:.1f} s", flush=True)
            for name, storage in (("redis", redis_store), ("file", files)):
                variants |= operations(name, storage, workflow, count, newest, scale)
        samples: dict[tuple[int, str], list[float]] = {key: [] for key in variants}
        # One untimed call each first, but for the few that take seconds.
        warm_up = {key: int(calls >= ROUNDS) for key, (_, calls, _) in variants.items()}
        await timed_round(variants, warm_up, {key: [] for key in variants})
        left = {key: calls for key, (_, calls, _) in variants.items()}
        for round_ in range(ROUNDS):
            quota = {key: -(-left[key] // (ROUNDS - round_)) for key in variants}  # spread evenly over the rounds
            await timed_round(variants, quota, samples)
            left = {key: left[key] - quota[key] for key in variants}

        for count, files in directories.items():
            for storage in (redis_store, files):
                latest = await storage.get_latest(workflow_name=f"bench-{count}")
                assert latest is not None, "the workflow has checkpoints"
                assert latest.iteration_count == count - 1, "get_latest is the newest checkpoint"
            assert len(await redis_store.list_checkpoint_ids(workflow_name=f"bench-{count}")) == count
    results: dict[int, dict[str, float]] = {count: {} for count in COUNTS}
    for (count, name), values in samples.items():
        results[count][name] = statistics.median(values)
    return results


def operations(
    name: str, storage: Any, workflow: str, count: int, newest: str, scale: float
) -> dict[tuple[int, str], Variant]:
    """The timed save, load and get_latest of one storage on one workflow of ``count`` checkpoints."""
    saved: list[str] = []

    async def save() -> None:
        checkpoint = make_checkpoint(workflow, count, newest)
        saved.append(checkpoint.checkpoint_id)
        await storage.save(checkpoint)

    async def delete() -> None:
        await storage.delete(saved.pop())  # the count stays put

    async def nothing() -> None:
        pass

    def calls(n: int) -> int:
        return max(1, int(n * scale))

    latest_calls = FILE_LATEST_CALLS[count] if name == "file" else CALLS
    return {
        (count, f"save {name}"): (save, calls(CALLS), delete),
        (count, f"load {name}"): (lambda: storage.load(newest), calls(CALLS), nothing),
        (count, f"get_latest {name}"): (
            lambda: storage.get_latest(workflow_name=workflow),
            calls(latest_calls),
            nothing,
        ),
    }


async def sizes(url: str, directory: Path) -> dict[int, dict[str, int]]:
    """Bytes of one checkpoint per conversation length: Redis body plain and zlib, and the JSON file."""
    found: dict[int, dict[str, int]] = {}
    raw = redis.asyncio.Redis.from_url(url)
    files = FileCheckpointStorage(directory)
    try:
        for length in SIZED:
            checkpoint = make_checkpoint(WORKFLOW, 0, None, length)
            row: dict[str, int] = {}
            for variant, zlib in (("redis", False), ("redis zlib", True)):
                compression = "zlib" if zlib else None
                async with RedisCheckpointStorage(
                    url, key_prefix=f"size-{variant}", compression=compression
                ) as storage:
                    await storage.save(checkpoint)
                    keys = storage.workflow_keys(WORKFLOW)
                    row[variant] = int(await raw.hstrlen(keys.checkpoints, checkpoint.checkpoint_id))  # type: ignore[misc]
            await files.save(checkpoint)
            row["file"] = (directory / f"{checkpoint.checkpoint_id}.json").stat().st_size
            found[length] = row
    finally:
        await raw.aclose()
    return found


def report(results: dict[int, dict[str, float]], bytes_per: dict[int, dict[str, int]]) -> bool:
    print("\nOne workflow's checkpoints, median ms per call; ratio: file / redis (how many times slower files are)\n")
    print("| checkpoints | save redis | save file | file / redis | load redis | load file | file / redis "
          "| get_latest redis | get_latest file | file / redis |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count, r in results.items():
        print(
            f"| {count:,} | {r['save redis']:.3f} | {r['save file']:.3f} | {r['save file'] / r['save redis']:.1f}x "
            f"| {r['load redis']:.3f} | {r['load file']:.3f} | {r['load file'] / r['load redis']:.1f}x "
            f"| {r['get_latest redis']:.3f} | {r['get_latest file']:.2f} "
            f"| **{r['get_latest file'] / r['get_latest redis']:.0f}x** |"
        )
    print("\nBytes per checkpoint (an agent conversation of N messages); ratio: Redis body / JSON file\n")
    print("| messages | JSON file | Redis | Redis / file | Redis zlib | zlib / file |")
    print("|---:|---:|---:|---:|---:|---:|")
    for length, b in bytes_per.items():
        print(
            f"| {length} | {b['file']:,} | {b['redis']:,} | {b['redis'] / b['file']:.2f} "
            f"| {b['redis zlib']:,} | **{b['redis zlib'] / b['file']:.2f}** |"
        )
    first, last = COUNTS[0], COUNTS[-1]
    at_1000 = results[1_000]["get_latest redis"] / results[first]["get_latest redis"]
    at_last = results[last]["get_latest redis"] / results[first]["get_latest redis"]
    checks = [
        (f"get_latest among 1,000 / among {first} = {at_1000:.2f}x (target: at most 2x)", at_1000 <= 2),
        (f"get_latest among {last:,} / among {first} = {at_last:.2f}x", at_last <= 2),
    ]
    print()
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'MISS'} {text}")
    return checks[0][1]


def draw(results: dict[int, dict[str, float]], bytes_per: dict[int, dict[str, int]], path: Path) -> bool:
    try:
        import matplotlib  # pyright: ignore[reportMissingImports]
    except ImportError:
        print("\nno chart: matplotlib is not installed (the bench group has it)")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pyright: ignore[reportMissingImports]

    counts = list(results)
    figure, (timing, size) = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [3, 2]})
    for operation, color in [("save", "tab:blue"), ("load", "tab:green"), ("get_latest", "tab:red")]:
        for storage, style in [("redis", "o-"), ("file", "s--")]:
            values = [results[c][f"{operation} {storage}"] for c in counts]
            timing.plot(counts, values, style, color=color, label=f"{operation} {storage}")
    timing.set_xscale("log")
    timing.set_yscale("log")
    timing.set_xlabel("checkpoints of the workflow")
    timing.set_ylabel("median ms per call")
    timing.set_title("RedisCheckpointStorage (solid) vs FileCheckpointStorage (dashed)")
    timing.grid(True, which="both", alpha=0.3)
    timing.legend(fontsize=8, ncol=3)
    lengths = list(bytes_per)
    width = 0.27
    for i, (variant, label) in enumerate([("file", "JSON file"), ("redis", "Redis"), ("redis zlib", "Redis zlib")]):
        values = [bytes_per[n][variant] / 1024 for n in lengths]
        bars = size.bar([x + i * width for x in range(len(lengths))], values, width, label=label)
        size.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7)
    size.set_xticks([x + width for x in range(len(lengths))], [f"{n} messages" for n in lengths])
    size.set_yscale("log")
    size.set_ylabel("KiB per checkpoint")
    size.set_title("Bytes per checkpoint")
    size.grid(True, axis="y", which="both", alpha=0.3)
    size.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


async def main(scale: float) -> bool:
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory() as directory:
        version = (await (client := redis.asyncio.Redis.from_url(server.url)).info("server"))["redis_version"]
        await client.aclose()
        started = time.perf_counter()
        results = await measure(server.url, Path(directory) / "timed", scale)
        print(f"measured in {time.perf_counter() - started:.1f} s")
        bytes_per = await sizes(server.url, Path(directory) / "sized")
    print(f"\nredis-server {version}; files on local disk ({tempfile.gettempdir()})")
    ok = report(results, bytes_per)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "redis_version": version,
        "conversation_messages": CONVERSATION,
        "timings_ms": {str(c): r for c, r in results.items()},
        "bytes_per_checkpoint": {str(n): b for n, b in bytes_per.items()},
    }
    (RESULTS / "checkpoints.json").write_text(json.dumps(out, indent=2))
    if draw(results, bytes_per, RESULTS / "checkpoints.png"):
        print(f"\nchart: {RESULTS / 'checkpoints.png'}")
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of timed calls")
    sys.exit(0 if asyncio.run(main(parser.parse_args().scale)) else 1)
