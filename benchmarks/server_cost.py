"""Redis CPU per saved turn (``INFO commandstats``): the floor, ours and upstream's, in one run.

Run (the bench environment has upstream's 1.x ``RedisHistoryProvider`` and matplotlib; in
another 1.x environment upstream's row and the chart are left out, saying so):

    UV_PROJECT_ENVIRONMENT=.venv-bench nice uv run --locked --group bench python benchmarks/server_cost.py

Redis runs a shard's commands on one core, so the server time a turn costs sets how many
turns a shard serves. One private redis-server is started here; for each history size every
path gets a thread pre-filled with that many messages (one big append), then saves turns of a
user message (~200 characters, no id) and an assistant message (~400 characters, a
``chatcmpl-`` id), with ``max_messages`` (the largest size: it binds there only, where every
turn trims two), ``ttl`` and one label set. Paths, taking turns call by call:

* floor: the framework's ``to_dict()`` JSON of the two messages, one MULTI of RPUSH + LTRIM
  + EXPIRE (redis-py, the same client);
* ``RedisChatMessageStore.add_messages`` (one EVALSHA);
* ``RedisChatHistoryProvider.save_messages`` (1.x; one EVALSHA, deduplicating);
* upstream's ``agent_framework_redis.RedisHistoryProvider.save_messages`` (its own client;
  it reads the whole history, so it gets fewer turns on long ones).

Each call is bracketed by two ``INFO commandstats`` (after one ``CONFIG RESETSTAT`` per
size); CONFIG and INFO themselves are left out. After each call the thread is trimmed back
to its size outside the brackets, so every call sees the same history. Redis 7 counts the
commands a script or a MULTI runs in their own ``cmdstat_*`` *and* in the EVALSHA's or EXEC's
``usec``, so a path's CPU is the sum of ``usec`` minus the commands it ran inside a script or a
transaction (counted once, in their container). ``usec`` is whole microseconds per call, so
single figures below ~1 µs are averages of 0s and 1s. Also measured: reads of the
``add_messages`` thread (a 20-message window, ``context_messages=20``, against LRANGE of the
newest 20; the whole history against LRANGE 0 -1), and wall time per call on one
connection (medians). Prints Markdown tables, writes ``benchmarks/results/server_cost.json``
and draws ``benchmarks/results/server_cost.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio
import redis.exceptions

from agent_framework_redis_store import RedisChatMessageStore, thread_key
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store._core.lua import _CONSTANTS, APPEND_AND_TRIM, Script
from agent_framework_redis_store.testing import EmbeddedRedis

SIZES = [10, 1_000, 100_000]
RESULTS = Path(__file__).parent / "results"
PREFIX = "chat_messages"
TTL = 3600
LABELS = {"tenant": "acme"}
WINDOW = 20
USER_TEXT = (
    "Can you remind me which Python libraries we discussed for neural networks last time, and which "
    "one you suggested for a small team that ships models to production? (turn {:07d})"
)
ASSISTANT_TEXT = (
    "We talked about PyTorch, TensorFlow and JAX; you preferred PyTorch for its eager mode and "
    "its debugging story, TensorFlow for serving, and JAX for research code that needs grad and vmap. "
) * 2 + "(turn {:07d})"
# A script's or a transaction's container: its usec includes the commands it ran.
CONTAINERS = frozenset({"evalsha", "eval", "fcall", "exec"})
FLOOR, STORE, PROVIDER, UPSTREAM = "floor", "add_messages", "save_messages", "upstream save_messages"
EMPTY = "empty call, round "
PROBE_CALLS = 24
PROBE_LUA = f"for i = 1, {PROBE_CALLS} do redis.call('EXISTS', KEYS[1]) end return 1"
PROBE_EMPTY, PROBE_CALLING = "probe: return 1", f"probe: {PROBE_CALLS} x EXISTS"
# The writes no append of ours can do without, and nothing else: the messages and their index
# entries pushed and trimmed, the meta hash, the registry and the label index, the TTL read.
PROBE_WRITES = "probe: the writes alone"
# The same writes without Lua: one MULTI, as the floor's (no check, no condition can run there).
PROBE_WRITES_MULTI = "probe: the writes alone, in MULTI"
WRITES_MULTI_COMMANDS = ("rpush", "ltrim", "hset", "zadd", "pttl")
# One add_messages call replayed (its keys and arguments, without its batch token), by EVALSHA and as a
# Redis Function (FUNCTION LOAD once, FCALL), to measure what Functions would save.
PROBE_REPLAY, PROBE_FCALL = "probe: an append replayed (EVALSHA)", "probe: an append replayed (FCALL)"
# The append script's per-call memos: a function library's top level runs once, so they are reset per call.
MEMOS = ("label_keys_of", "marks", "newest_of")
PROBE_WRITES_LUA = """
redis.call('RPUSH', KEYS[1], ARGV[9], ARGV[10])
redis.call('RPUSH', KEYS[4], ARGV[11], ARGV[12])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('LTRIM', KEYS[4], -tonumber(ARGV[1]), -1)
redis.call('HSET', KEYS[3], 'active', string.sub(ARGV[4], 1, -4), 'count', ARGV[1], 'batches', ARGV[3])
redis.call('ZADD', KEYS[5], string.sub(ARGV[4], 1, -4), ARGV[8])
redis.call('ZADD', KEYS[2], string.sub(ARGV[4], 1, -4), ARGV[8])
redis.call('PTTL', KEYS[1])
return 1
"""


def function_library(script: Script) -> str:
    """``script`` as a Redis Function library: its shared Lua functions defined once, at FUNCTION LOAD."""
    libraries = "\n".join(script.uses)
    for memo in MEMOS:
        declaration = f"local {memo} = {{}}"
        if declaration not in libraries:
            raise RuntimeError(f"{script.name}: no per-call memo {memo!r} to reset (update MEMOS)")
        libraries = libraries.replace(declaration, f"local {memo}")
    name = f"bench_{script.sha[:12]}"
    return (
        f"#!lua name={name}\n{_CONSTANTS}\nlocal KEYS, ARGV\n{libraries}\n"
        f"redis.register_function('{name}', function(keys, args)\nKEYS, ARGV = keys, args\n"
        f"{', '.join(MEMOS)} = {', '.join('{}' for _ in MEMOS)}\n{script.body}\nend)\n"
    )


async def capture_append(store: RedisChatMessageStore, messages: list[Any]) -> tuple[list[str], list[Any]]:
    """The keys and arguments of the APPEND_AND_TRIM call ``store.add_messages(messages)`` makes."""
    calls: list[tuple[list[str], list[Any]]] = []
    original = Script.run

    async def spy(self: Script, redis: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if self is APPEND_AND_TRIM:
            calls.append((list(keys), list(args)))
        return await original(self, redis, keys, args)

    Script.run = spy  # type: ignore[method-assign]
    try:
        await store.add_messages(messages)
    finally:
        Script.run = original  # type: ignore[method-assign]
    return calls[-1]


def turn_dicts(number: int) -> list[dict[str, Any]]:
    return [
        {"role": "user", "contents": [{"type": "text", "text": USER_TEXT.format(number)}]},
        {
            "role": "assistant",
            "contents": [{"type": "text", "text": ASSISTANT_TEXT.format(number)}],
            "message_id": f"chatcmpl-bench{number:07d}",
            "author_name": "Bench",
        },
    ]


def turn(number: int) -> list[Any]:
    return [message_from_dict(d) for d in turn_dicts(number)]


def encode(message: Any) -> str:
    return json.dumps(message.to_dict())


async def snapshot(client: redis.asyncio.Redis) -> tuple[dict[str, tuple[int, int]], float]:
    """``cmdstat_<name>`` -> (calls, usec), without CONFIG and INFO (the measurement's own); and
    the server process' CPU time (user + system) in µs."""
    info = await client.info("commandstats", "cpu")
    stats: dict[str, tuple[int, int]] = {}
    for key, value in info.items():
        name = key.removeprefix("cmdstat_")
        if name == key or name == "info" or name.startswith("config"):
            continue
        stats[name] = (int(value["calls"]), int(value["usec"]))
    return stats, (float(info["used_cpu_user"]) + float(info["used_cpu_sys"])) * 1e6


@dataclass
class Tally:
    """What one operation cost over its calls: per command name, calls and usec; wall times."""

    nested: Callable[[str], bool]  # is this command run inside the operation's script or MULTI?
    calls: Counter[str] = field(default_factory=Counter)
    usec: Counter[str] = field(default_factory=Counter)
    wall_us: list[float] = field(default_factory=list)
    cpu_us: list[int] = field(default_factory=list)  # per call
    process_us: list[float] = field(default_factory=list)  # per call, with two INFOs' share
    baseline: Tally | None = None  # an empty call in the same round

    @property
    def count(self) -> int:
        return len(self.wall_us)

    def add(self, delta: dict[str, tuple[int, int]], process_us: float) -> None:
        """One call's commandstats delta and process CPU time."""
        self.process_us.append(process_us)
        for name, (calls, usec) in delta.items():
            self.calls[name] += calls
            self.usec[name] += usec
        self.cpu_us.append(sum(usec for name, (_, usec) in delta.items() if not self.nested(name)))

    def cpu(self) -> float:
        """Redis CPU per call in µs (the mean, as sum of usec / calls), each command counted once."""
        return sum(self.cpu_us) / self.count

    def cpu_median(self) -> float:
        """Robust to a server descheduled mid-command on a busy machine (its usec is wall time)."""
        return statistics.median(self.cpu_us)

    def process(self) -> float:
        """The server process' CPU time per call (getrusage: parsing, replies, the network), less
        that of an empty call between the same two INFOs (the round's baseline)."""
        assert self.baseline is not None
        return statistics.fmean(self.process_us) - statistics.fmean(self.baseline.process_us)

    def commands(self) -> float:
        return sum(self.calls.values()) / self.count

    def wall(self) -> float:
        return statistics.median(self.wall_us)

    def inside_scripts(self) -> dict[str, tuple[float, float]]:
        """Per command: (calls, usec) per call; the script's own time as ``EVALSHA (own)``."""
        rows = {
            name: (self.calls[name] / self.count, self.usec[name] / self.count)
            for name in sorted(self.usec, key=lambda n: -self.usec[n])
            if name not in CONTAINERS
        }
        for container in sorted(CONTAINERS & set(self.usec)):
            inner = sum(usec for name, usec in self.usec.items() if name not in CONTAINERS)
            rows[f"{container.upper()} (own: Lua, arguments, reply)"] = (
                self.calls[container] / self.count,
                (self.usec[container] - inner) / self.count,
            )
        return rows

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.count,
            "cpu_us": self.cpu(),
            "cpu_us_median": self.cpu_median(),
            "process_cpu_us": self.process() if self.baseline is not None else None,
            "commands": self.commands(),
            "wall_us": self.wall(),
            "by_command": {name: {"calls": c, "usec": u} for name, (c, u) in self.inside_scripts().items()},
        }


def all_but_containers(name: str) -> bool:
    return name not in CONTAINERS


def one_of(*names: str) -> Callable[[str], bool]:
    return frozenset(names).__contains__


@dataclass
class Operation:
    name: str
    call: Callable[[], Awaitable[object]]
    reset: Callable[[], Awaitable[object]]
    calls: int
    tally: Tally


async def measure_round(client: redis.asyncio.Redis, operations: Sequence[Operation], quota: int) -> None:
    """Up to ``quota`` calls of each operation, taking turns call by call, each between two INFOs."""
    gc.collect()
    gc.disable()  # as timeit does: one path's garbage never lands in another's timing
    try:
        before, cpu_before = await snapshot(client)
        for call in range(quota):
            for operation in operations:
                if call >= operation.calls:
                    continue
                start = time.perf_counter_ns()
                await operation.call()
                operation.tally.wall_us.append((time.perf_counter_ns() - start) / 1000)
                after, cpu_after = await snapshot(client)
                delta: dict[str, tuple[int, int]] = {}
                for name, (calls, usec) in after.items():
                    was_calls, was_usec = before.get(name, (0, 0))
                    if calls != was_calls:
                        delta[name] = (calls - was_calls, usec - was_usec)
                operation.tally.add(delta, cpu_after - cpu_before)
                await operation.reset()
                before, cpu_before = await snapshot(client)
    finally:
        gc.enable()


def scaled(turns: int, size: int, per: int) -> int:
    """Fewer calls for an operation whose client work grows with the history (``per`` messages' worth)."""
    return max(3, min(turns, turns * per // size))


async def measure(url: str, size: int, turns: int, max_messages: int, notes: list[str]) -> dict[str, Tally]:
    client = redis.asyncio.Redis.from_url(url)
    await client.flushall()
    thread_id = f"bench_{size}"
    options: dict[str, Any] = {"max_messages": max_messages, "ttl": TTL, "labels": LABELS}
    store = RedisChatMessageStore(redis_client=client, thread_id=f"store_{thread_id}", **options)
    window = RedisChatMessageStore(redis_client=client, thread_id=f"store_{thread_id}", context_messages=WINDOW)
    full = RedisChatMessageStore(redis_client=client, thread_id=f"store_{thread_id}")
    keys = {STORE: store.redis_key, FLOOR: f"floor:{thread_id}"}
    history = [m for number in range(size // 2) for m in turn(number)]
    payloads = [encode(m) for m in history]
    for start in range(0, size, 10_000):
        await client.rpush(keys[FLOOR], *payloads[start : start + 10_000])
    await store.add_messages(history)

    provider: Any = None
    try:
        from agent_framework_redis_store import RedisChatHistoryProvider
    except ImportError as error:  # the legacy generation has no HistoryProvider
        notes.append(f"RedisChatHistoryProvider left out: {error}")
    else:
        provider = RedisChatHistoryProvider(redis_client=client, **options)
        keys[PROVIDER] = thread_key(PREFIX, f"provider_{thread_id}")
        await provider.save_messages(f"provider_{thread_id}", history)

    upstream: Any = None
    try:
        from agent_framework_redis import RedisHistoryProvider  # pyright: ignore[reportMissingImports]
    except ImportError as error:
        if not any(n.startswith("upstream") for n in notes):
            notes.append(f"upstream RedisHistoryProvider left out (agent-framework-redis 1.x not importable): {error}")
    else:
        upstream = RedisHistoryProvider(redis_url=url, application_id="bench", max_messages=max_messages)
        keys[UPSTREAM] = upstream._redis_key(f"upstream_{thread_id}")
        for start in range(0, size, 10_000):
            await client.rpush(keys[UPSTREAM], *payloads[start : start + 10_000])

    numbers = iter(range(size, 10**7))

    def trimmer(*keys_to_trim: str) -> Callable[[], Awaitable[object]]:
        async def trim() -> None:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys_to_trim:
                    pipe.ltrim(key, -size, -1)
                await pipe.execute()

        return trim

    async def nothing() -> None:
        pass

    async def floor_save() -> None:
        async with client.pipeline(transaction=True) as pipe:
            pipe.rpush(keys[FLOOR], *(encode(m) for m in turn(next(numbers))))
            pipe.ltrim(keys[FLOOR], -max_messages, -1)
            pipe.expire(keys[FLOOR], TTL)
            await pipe.execute()

    async def store_save() -> None:
        await store.add_messages(turn(next(numbers)))

    operations = [
        Operation(FLOOR, floor_save, trimmer(keys[FLOOR]), turns, Tally(one_of("rpush", "ltrim", "expire"))),
        Operation(STORE, store_save, trimmer(keys[STORE], f"{keys[STORE]}:index"), turns, Tally(all_but_containers)),
    ]
    if provider is not None:

        async def provider_save() -> None:
            await provider.save_messages(f"provider_{thread_id}", turn(next(numbers)))

        key = keys[PROVIDER]
        reset = trimmer(key, f"{key}:index", f"{key}:fingerprints")
        operations.append(Operation(PROVIDER, provider_save, reset, turns, Tally(all_but_containers)))
    # Upstream reads the whole history on every save: in a round of its own, so that its large
    # replies do not leave the others to run on cold CPU caches (which doubles their figures).
    upstream_round: list[Operation] = []
    if upstream is not None:

        async def upstream_save() -> None:
            await upstream.save_messages(f"upstream_{thread_id}", turn(next(numbers)))

        calls = scaled(turns, size, 1_000)
        upstream_round.append(
            Operation(UPSTREAM, upstream_save, trimmer(keys[UPSTREAM]), calls, Tally(one_of("rpush")))
        )
    reads = [
        Operation("window", window.list_messages, nothing, turns, Tally(all_but_containers)),
        Operation("LRANGE window", lambda: client.lrange(keys[STORE], -WINDOW, -1), nothing, turns, Tally(one_of())),
    ]
    full_calls = scaled(turns, size, 100)
    full_reads = [
        Operation("full", full.list_messages, nothing, full_calls, Tally(one_of())),
        Operation("LRANGE all", lambda: client.lrange(keys[STORE], 0, -1), nothing, full_calls, Tally(one_of())),
    ]
    # Probes of what any script costs: an empty one with add_messages' keys and arguments, and
    # one that makes PROBE_CALLS cheap redis.call()s (the conversion in and out of Lua). In a
    # round of their own: Lua's garbage collector, run in steps inside whichever script is
    # running, would charge them for the garbage of the reads' scripts.
    empty, calling = client.register_script("return 1"), client.register_script(PROBE_LUA)
    writes = client.register_script(PROBE_WRITES_LUA)
    probe_thread = f"probe:{{{thread_id}}}"
    for start in range(0, size, 10_000):
        await client.rpush(probe_thread, *payloads[start : start + 10_000])
        await client.rpush(f"{probe_thread}:index", *(["40"] * len(payloads[start : start + 10_000])))
    writes_keys = [probe_thread, f"{PREFIX}:label:probe", f"{probe_thread}:meta", f"{probe_thread}:index"]
    writes_keys.append(f"{PREFIX}:registry")
    probe_keys = [keys[STORE], *(f"{keys[STORE]}:{s}" for s in ("batches", "meta", "index")), f"{PREFIX}:registry"]
    probe_args = [max_messages, TTL * 1000, b"12345678", 10**15, 0, "1", json.dumps(LABELS), thread_id]
    probe_args += [*(encode(m) for m in turn(0)), "40", "80|0123456789abcdef"]

    async def writes_in_multi() -> None:
        # PROBE_WRITES_LUA's commands, with its arguments
        thread, label, meta, index, registry = writes_keys
        now_ms = str(probe_args[3])[:-3]
        async with client.pipeline(transaction=True) as pipe:
            pipe.rpush(thread, probe_args[8], probe_args[9])
            pipe.rpush(index, probe_args[10], probe_args[11])
            pipe.ltrim(thread, -max_messages, -1)
            pipe.ltrim(index, -max_messages, -1)
            pipe.hset(meta, mapping={"active": now_ms, "count": probe_args[0], "batches": probe_args[2]})
            pipe.zadd(registry, {probe_args[7]: now_ms})
            pipe.zadd(label, {probe_args[7]: now_ms})
            pipe.pttl(thread)
            await pipe.execute()

    probes = [
        Operation(PROBE_EMPTY, lambda: empty(probe_keys, probe_args), nothing, turns, Tally(all_but_containers)),
        Operation(PROBE_CALLING, lambda: calling(probe_keys, probe_args), nothing, turns, Tally(all_but_containers)),
        Operation(
            PROBE_WRITES,
            lambda: writes(writes_keys, probe_args),
            trimmer(probe_thread, f"{probe_thread}:index"),
            turns,
            Tally(all_but_containers),
        ),
        Operation(
            PROBE_WRITES_MULTI,
            writes_in_multi,
            trimmer(probe_thread, f"{probe_thread}:index"),
            turns,
            Tally(one_of(*WRITES_MULTI_COMMANDS)),
        ),
    ]
    replay_reset = trimmer(keys[STORE], f"{keys[STORE]}:index")
    replay_keys, replay_args = await capture_append(store, turn(next(numbers)))
    await replay_reset()
    replay_args[2] = ""  # no batch token: each replay is a new batch

    def replayed() -> list[Any]:
        return [*replay_args[:3], time.time_ns() // 1000, *replay_args[4:]]

    probes.append(
        Operation(
            PROBE_REPLAY,
            lambda: client.evalsha(APPEND_AND_TRIM.sha, len(replay_keys), *replay_keys, *replayed()),
            replay_reset,
            turns,
            Tally(all_but_containers),
        )
    )
    try:
        library = function_library(APPEND_AND_TRIM)
        await client.function_load(library, replace=True)
    except (redis.exceptions.ResponseError, RuntimeError) as error:  # Redis 6: no Functions
        notes.append(f"{PROBE_FCALL} left out: {error}")
    else:
        name = library.split("\n", 1)[0].removeprefix("#!lua name=")
        probes.append(
            Operation(
                PROBE_FCALL,
                lambda: client.fcall(name, len(replay_keys), *replay_keys, *replayed()),  # type: ignore[misc]
                replay_reset,
                turns,
                Tally(all_but_containers),
            )
        )
    rounds = [operations, upstream_round, reads, full_reads, probes]
    for i, operations_of_round in enumerate(rounds):
        if operations_of_round:  # each round's baseline for process CPU
            baseline = Tally(one_of())
            for operation in operations_of_round:
                operation.tally.baseline = baseline
            operations_of_round.append(Operation(f"{EMPTY}{i}", nothing, nothing, turns, baseline))
    everything = [o for r in rounds for o in r]
    # The pre-fill's one append of `size` messages handed Lua `size` payloads as arguments: at
    # 100,000, some 60 MB of strings that Lua's incremental collector would sweep, a little in
    # every script call, over the next several thousand calls (about +30 µs each, whichever
    # script runs). That is the cost of that one big append, not of a turn at this history:
    # a fresh Lua state (SCRIPT FLUSH; the warm-up loads the scripts again) leaves it out.
    await client.script_flush()
    warm = [Operation(o.name, o.call, o.reset, 2, Tally(o.tally.nested)) for o in everything]
    await measure_round(client, warm, 2)  # SCRIPT LOAD, connections
    await client.config_resetstat()
    for operations_of_round in rounds:
        await measure_round(client, operations_of_round, turns)

    for name, key in keys.items():
        assert await client.llen(key) == size, f"{name}: every call must see the same history"
    if provider is not None:
        await provider.aclose()
    if upstream is not None:
        await upstream.aclose()
    await client.flushall()
    await client.aclose()
    return {o.name: o.tally for o in everything}


def report(results: dict[int, dict[str, Tally]], max_messages: int, notes: list[str]) -> bool:
    print(f"\nPer saved turn (a user message of ~200 characters and an assistant message of ~400), "
          f"max_messages={max_messages:,} (binding at {max_messages:,} only), ttl={TTL}, one label. Redis CPU: "
          "INFO commandstats usec, mean and median per turn; process CPU: the server's getrusage "
          "(also parsing and network) less an empty call's; wall: median on one connection\n")  # fmt: skip
    for note in notes:
        print(f"NOTE {note}")
    print("| history | path | turns | Redis CPU per turn | vs floor | median | commands per turn "
          "| process CPU per turn | vs floor | wall per turn | vs floor |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, tallies in results.items():
        floor = tallies[FLOOR]
        for name in (FLOOR, STORE, PROVIDER, UPSTREAM):
            t = tallies.get(name)
            if t is None:
                continue
            print(
                f"| {size:,} | {name} | {t.count} | {t.cpu():.1f} µs | **{t.cpu() / floor.cpu():.1f}x** "
                f"| {t.cpu_median():.0f} µs | {t.commands():.1f} | {t.process():.0f} µs "
                f"| {t.process() / floor.process():.1f}x | {t.wall():.0f} µs | {t.wall() / floor.wall():.2f}x |"
            )

    print("\nReads of the add_messages thread: Redis CPU (commandstats), process CPU and wall (median) per read, µs\n")
    print("| history | read | reads | Redis CPU | vs LRANGE | process CPU | vs LRANGE | wall | vs LRANGE |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for size, t in results.items():
        for read, plain, what in (("window", "LRANGE window", f"window of {WINDOW}"), ("full", "LRANGE all", "full")):
            r, p = t[read], t[plain]
            range_ = f"-{WINDOW} -1" if read == "window" else "0 -1"
            for name, x in ((what, r), (f"LRANGE {range_}", p)):
                print(
                    f"| {size:,} | {name} | {x.count} | {x.cpu():.1f} | {x.cpu() / p.cpu():.1f}x | {x.process():.0f} "
                    f"| {x.process() / p.process():.1f}x | {x.wall():.0f} | {x.wall() / p.wall():.2f}x |"
                )

    size = 1_000 if 1_000 in results else sorted(results)[len(results) // 2]
    paths = [name for name in (STORE, PROVIDER) if name in results[size]]
    rows = {name: results[size][name].inside_scripts() for name in paths}
    names = list(dict.fromkeys(n for name in paths for n in rows[name]))
    print(f"\nWhere the µs go at {size:,} messages: per command, calls and Redis µs per turn "
          "(a script's own time is its EVALSHA's usec minus the commands it ran)\n")  # fmt: skip
    print("| command | " + " | ".join(f"{p} calls | {p} µs" for p in paths) + " |")
    print("|---|" + "---:|---:|" * len(paths))
    for command in names:
        cells = [rows[p].get(command) for p in paths]
        print(f"| {command} | " + " | ".join(" | " if c is None else f"{c[0]:.2f} | {c[1]:.2f}" for c in cells) + " |")
    print("| **total** | " + " | ".join(
        f"{results[size][p].commands():.1f} | **{results[size][p].cpu():.1f}**" for p in paths) + " |")  # fmt: skip

    empty, calling = results[size][PROBE_EMPTY], results[size][PROBE_CALLING]
    per_call = (calling.cpu() - empty.cpu()) / PROBE_CALLS
    exists = calling.usec["exists"] / calling.count / PROBE_CALLS
    print(f"\nProbes: an EVALSHA of `return 1` with add_messages' 5 keys and 12 arguments: {empty.cpu():.1f} µs; "
          f"each redis.call() from Lua: {per_call:.2f} µs, of which the command (EXISTS) {exists:.2f} µs")  # fmt: skip
    for size, tallies in results.items():
        if PROBE_FCALL in tallies:
            evalsha, fcall = tallies[PROBE_REPLAY].cpu(), tallies[PROBE_FCALL].cpu()
            print(f"At {size:,}: one add_messages append replayed costs {evalsha:.1f} µs by EVALSHA and {fcall:.1f} µs "
                  f"as a Redis Function (FCALL): {fcall / evalsha:.2f}x")  # fmt: skip
    for size, tallies in results.items():
        alone, floor = tallies[PROBE_WRITES].cpu(), tallies[FLOOR].cpu()
        multi = tallies[PROBE_WRITES_MULTI].cpu()
        print(f"At {size:,}: a script making only the writes an append needs (RPUSH and LTRIM of the messages and "
              f"of their index entries, HSET of meta, ZADD of the registry and of a label index, PTTL) costs "
              f"{alone:.1f} µs, {alone / floor:.1f}x the floor; the same writes in one MULTI, without Lua, "
              f"{multi:.1f} µs, {multi / floor:.1f}x")  # fmt: skip

    checks: list[tuple[str, bool]] = []
    for size, tallies in results.items():
        floor = tallies[FLOOR].cpu()
        for name, target in ((STORE, 3), (PROVIDER, 4)):
            if name in tallies:
                ratio = tallies[name].cpu() / floor
                checks.append((f"{name} at {size:,}: {ratio:.1f}x the floor's Redis CPU (target: at most {target}x)",
                               ratio <= target))  # fmt: skip
    print()
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'MISS'} {text}")
    # The same targets by what the server process spends (reading requests and writing replies
    # included): shown beside the figure, not counted in the result.
    for size, tallies in results.items():
        floor = tallies[FLOOR].process()
        for name, target in ((STORE, 3), (PROVIDER, 4)):
            if name in tallies:
                ratio = tallies[name].process() / floor
                mark = "ok  " if ratio <= target else "over"
                print(f"{mark} (process CPU) {name} at {size:,}: {ratio:.1f}x the floor's (target: at most {target}x)")
    return all(ok for _, ok in checks)


def draw(results: dict[int, dict[str, Tally]], path: Path) -> bool:
    try:
        import matplotlib  # pyright: ignore[reportMissingImports]
    except ImportError:
        print("\nno chart: matplotlib is not installed (the bench group has it)")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pyright: ignore[reportMissingImports]

    sizes = list(results)
    names = [n for n in (FLOOR, STORE, PROVIDER, UPSTREAM) if all(n in results[s] for s in sizes)]
    figure, axis = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [results[s][name].cpu() for s in sizes]
        bars = axis.bar([x + i * width for x in range(len(sizes))], values, width, label=name)
        axis.bar_label(bars, labels=[f"{v:.0f}" for v in values], fontsize=7)
    axis.set_yscale("log")
    axis.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(sizes))], [f"{s:,}" for s in sizes])
    axis.set_xlabel("stored messages in the thread")
    axis.set_ylabel("Redis CPU per saved turn (µs)")
    axis.set_title("Redis CPU per turn (INFO commandstats): floor vs ours vs upstream")
    axis.grid(True, axis="y", which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


async def main(sizes: list[int], turns: int) -> bool:
    max_messages = max(sizes)
    notes: list[str] = []
    with EmbeddedRedis() as server:
        version = (await (client := redis.asyncio.Redis.from_url(server.url)).info("server"))["redis_version"]
        await client.aclose()
        results = {size: await measure(server.url, size, turns, max_messages, notes) for size in sizes}
    print(f"\nredis-server {version}")
    ok = report(results, max_messages, notes)
    RESULTS.mkdir(exist_ok=True)
    out = {"redis_version": version, "turns": turns, "max_messages": max_messages, "notes": notes}
    out["results"] = {str(s): {n: t.summary() for n, t in tallies.items()} for s, tallies in results.items()}
    (RESULTS / "server_cost.json").write_text(json.dumps(out, indent=2))
    if draw(results, RESULTS / "server_cost.png"):
        print(f"\nchart: {RESULTS / 'server_cost.png'}")
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=300, help="timed turns per path and size (default 300)")
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=SIZES,
        help="stored messages per thread, comma-separated (default 10,1000,100000); max_messages is the largest",
    )
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(main(sorted(args.sizes), args.turns)) else 1)
