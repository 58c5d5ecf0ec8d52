"""Turns per second and Redis CPU per turn under load: the floor, ours and upstream's, in one run.

Run (the bench environment has upstream's 1.x ``RedisHistoryProvider`` and matplotlib; in
another environment the paths it lacks, and the chart, are left out, saying so):

    UV_PROJECT_ENVIRONMENT=.venv-bench nice uv run --locked --group bench python benchmarks/throughput.py [--quick]

One private redis-server is started on a free port. Several client processes (default 4) each
run many concurrent sessions (default 64, asyncio tasks), every session on a conversation
thread of its own, saving turns back to back: a user message (~200 characters, no id) and an
assistant message (~400 characters, a ``chatcmpl-`` id), with ``max_messages``, ``ttl`` and
one label set, the turns of ``benchmarks/server_cost.py``. Each thread is pre-filled with
``--history`` messages and ``max_messages`` is that size (by default), so every turn trims two
and the threads keep their size however long the run. The paths, one after another on the
same server and processes:

* floor: the framework's ``to_dict()`` JSON of the two messages, one MULTI of RPUSH + LTRIM
  + EXPIRE (redis-py);
* ``RedisChatMessageStore.add_messages``;
* ``RedisChatHistoryProvider.save_messages`` (1.x);
* upstream's ``agent_framework_redis.RedisHistoryProvider.save_messages`` (1.x; it reads the
  whole history on every save).

Each path gets a warm-up, then a measured window bracketed by ``CONFIG RESETSTAT`` +
``INFO commandstats cpu`` and the turn counters of the processes: turns/s; Redis CPU per turn
as the sum of ``usec`` (each command counted once: Redis 7 counts the commands a script or a
MULTI runs also in its EVALSHA's or EXEC's ``usec``, see server_cost.py); the same from each
command's median (``INFO latencystats`` p50 times its calls), which a server descheduled
mid-command on a busy machine does not inflate; and the server process' own CPU time
(``used_cpu_user`` + ``used_cpu_sys``) per turn, which adds reading, parsing and replying.
After each path every thread is checked to hold what it should.

Then memory per message, the way ``benchmarks/memory.py`` measures it (its conversations of
~305-byte messages, default options): threads of 960 messages written by upstream and by ours
(a save per turn; upstream's list is the same however it is written, so a save per thread, as
a save per turn would re-read the whole history every time), the sum of ``MEMORY USAGE`` and
the growth of ``used_memory`` (less client buffers) per stored message.

On a machine with few cores the client processes (Python) saturate the CPU long before Redis
does, so turns/s measure the clients; Redis CPU per turn is the figure that says how many turns
one Redis core serves. Prints Markdown tables, writes ``benchmarks/results/throughput.json``
and draws ``benchmarks/results/throughput.png`` (``--out`` renames both). Results and how to
read them: docs/PERFORMANCE_SERVER_COST.md, "Throughput".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import statistics
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis.asyncio
from server_cost import CONTAINERS, LABELS, TTL, all_but_containers, encode, one_of, snapshot, turn

from agent_framework_redis_store import RedisChatMessageStore
from agent_framework_redis_store.testing import EmbeddedRedis

RESULTS = Path(__file__).parent / "results"
FLOOR, STORE, PROVIDER, UPSTREAM = "floor", "add_messages", "save_messages", "upstream save_messages"
PATHS = (FLOOR, STORE, PROVIDER, UPSTREAM)
# Which commands each path runs inside its EVALSHA or EXEC (counted there, not again).
NESTED: dict[str, Callable[[str], bool]] = {
    FLOOR: one_of("rpush", "ltrim", "expire"),
    STORE: all_but_containers,
    PROVIDER: all_but_containers,
    UPSTREAM: one_of("rpush"),
}
# The processes' state, one shared integer: the sessions save turns while it is not STOP and
# record their latency while it is MEASURING.
STOP, RUNNING, MEASURING = 0, 1, 2
MEMORY_MESSAGES = 960  # per thread


@dataclass(frozen=True)
class Settings:
    url: str
    sessions: int  # per process
    history: int  # messages per thread before the run
    max_messages: int


# -- the paths, as each client process drives them -----------------------------------------


class Floor:
    def __init__(self, settings: Settings) -> None:
        self.client = redis.asyncio.Redis.from_url(settings.url)
        self.max_messages = settings.max_messages

    def key(self, session: str) -> str:
        return f"floor:{session}"

    async def prefill(self, session: str, history: Sequence[Any]) -> None:
        await self.client.rpush(self.key(session), *(encode(m) for m in history))

    async def save(self, session: str, number: int) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(self.key(session), *(encode(m) for m in turn(number)))
            pipe.ltrim(self.key(session), -self.max_messages, -1)
            pipe.expire(self.key(session), TTL)
            await pipe.execute()

    async def length(self, session: str) -> int:
        return await self.client.llen(self.key(session))

    async def aclose(self) -> None:
        await self.client.aclose()


class Store:
    def __init__(self, settings: Settings) -> None:
        self.client = redis.asyncio.Redis.from_url(settings.url)
        self.options: dict[str, Any] = {"max_messages": settings.max_messages, "ttl": TTL, "labels": LABELS}
        self.stores: dict[str, RedisChatMessageStore] = {}

    def store(self, session: str) -> RedisChatMessageStore:
        if session not in self.stores:
            self.stores[session] = RedisChatMessageStore(redis_client=self.client, thread_id=session, **self.options)
        return self.stores[session]

    async def prefill(self, session: str, history: Sequence[Any]) -> None:
        await self.store(session).add_messages(history)

    async def save(self, session: str, number: int) -> None:
        await self.store(session).add_messages(turn(number))

    async def length(self, session: str) -> int:
        return len(await self.store(session).list_messages())

    async def aclose(self) -> None:
        await self.client.aclose()


class Provider:
    """Ours (1.x) or upstream's ``HistoryProvider``: one per process, sessions by id."""

    def __init__(self, provider: Any, client: redis.asyncio.Redis | None = None) -> None:
        self.provider = provider
        self.client = client

    @classmethod
    def ours(cls, settings: Settings) -> Provider:
        from agent_framework_redis_store import RedisChatHistoryProvider

        client = redis.asyncio.Redis.from_url(settings.url)
        options: dict[str, Any] = {"max_messages": settings.max_messages, "ttl": TTL, "labels": LABELS}
        return cls(RedisChatHistoryProvider(redis_client=client, **options), client)

    @classmethod
    def upstream(cls, settings: Settings) -> Provider:
        from agent_framework_redis import RedisHistoryProvider  # pyright: ignore[reportMissingImports]

        return cls(
            RedisHistoryProvider(redis_url=settings.url, application_id="bench", max_messages=settings.max_messages)
        )

    async def prefill(self, session: str, history: Sequence[Any]) -> None:
        await self.provider.save_messages(session, history)

    async def save(self, session: str, number: int) -> None:
        await self.provider.save_messages(session, turn(number))

    async def length(self, session: str) -> int:
        return len(await self.provider.get_messages(session))

    async def aclose(self) -> None:
        await self.provider.aclose()
        if self.client is not None:
            await self.client.aclose()


DRIVERS: dict[str, Callable[[Settings], Any]] = {
    FLOOR: Floor,
    STORE: Store,
    PROVIDER: Provider.ours,
    UPSTREAM: Provider.upstream,
}


def available_paths(wanted: Sequence[str], notes: list[str]) -> list[str]:
    """The wanted paths this environment can drive; a note for each left out."""
    paths: list[str] = []
    for path in wanted:
        try:
            if path == PROVIDER:
                from agent_framework_redis_store import RedisChatHistoryProvider  # noqa: F401
            elif path == UPSTREAM:
                from agent_framework_redis import RedisHistoryProvider  # pyright: ignore[reportMissingImports] # noqa: F401
        except ImportError as error:
            notes.append(f"{path} left out: {error}")
        else:
            paths.append(path)
    return paths


# -- a client process ---------------------------------------------------------------------


def client_process(
    index: int, connection: multiprocessing.connection.Connection, counters: Any, state: Any, settings: Settings
) -> None:
    """Serve the main process' phases until it says "exit": prefill, run until STOP, check."""
    asyncio.run(serve(index, connection, counters, state, settings))


async def serve(
    index: int, connection: multiprocessing.connection.Connection, counters: Any, state: Any, settings: Settings
) -> None:
    connection.send(("ready", None))
    while True:
        command, path = connection.recv()  # between phases nothing else runs here
        if command == "exit":
            return
        driver: Any = None
        try:
            driver = DRIVERS[path](settings)
            sessions = [f"bench-{index}-{n}" for n in range(settings.sessions)]
            first = settings.history // 2
            history = [m for number in range(first) for m in turn(number)]
            await asyncio.gather(*(driver.prefill(s, history) for s in sessions))
            connection.send(("prefilled", None))
            connection.recv()  # go: state is RUNNING
            latencies, turns = await converse(index, driver, sessions, first, counters, state)
            lengths = await asyncio.gather(*(driver.length(s) for s in sessions))
            wrong = [
                f"{s}: {length} messages, expected {min(settings.max_messages, settings.history + 2 * turns[s])}"
                for s, length in zip(sessions, lengths, strict=True)
                if length != min(settings.max_messages, settings.history + 2 * turns[s])
            ]
            connection.send(("done", {"latencies": latencies, "wrong": wrong, "turns": sum(turns.values())}))
        except Exception:
            state.value = STOP  # the others stop too: the phase is lost
            connection.send(("error", traceback.format_exc()))
        finally:
            if driver is not None:
                await driver.aclose()


async def converse(
    index: int, driver: Any, sessions: Sequence[str], first: int, counters: Any, state: Any
) -> tuple[list[float], dict[str, int]]:
    """Every session saves turns back to back until STOP; latencies of those ended while MEASURING."""
    latencies: list[float] = []
    turns = dict.fromkeys(sessions, 0)

    async def session_turns(session: str) -> None:
        number = first
        while state.value != STOP:
            start = time.perf_counter()
            await driver.save(session, number)
            number += 1
            turns[session] += 1
            counters[index] += 1
            if state.value == MEASURING:
                latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(session_turns(s) for s in sessions))
    return latencies, turns


# -- the main process ------------------------------------------------------------------------


@dataclass
class Phase:
    """One path's measured window."""

    path: str
    processes: int
    sessions: int
    seconds: float
    turns: int
    usec: int  # commandstats, each command counted once
    median_usec: float  # the same from each command's median (latencystats p50) times its calls
    commands: int
    evalsha: int
    process_cpu_us: float  # redis-server's used_cpu_user + used_cpu_sys
    client_cpu_s: float | None  # the client processes' CPU time (Linux /proc)
    latency_ms: dict[str, float]
    by_command: dict[str, dict[str, int]]

    @property
    def rate(self) -> float:
        return self.turns / self.seconds

    @property
    def cpu(self) -> float:
        return self.usec / self.turns

    @property
    def median_cpu(self) -> float:
        return self.median_usec / self.turns

    @property
    def process(self) -> float:
        return self.process_cpu_us / self.turns

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "turns_per_s": self.rate,
            "redis_cpu_us_per_turn": self.cpu,
            "redis_cpu_us_per_turn_from_medians": self.median_cpu,
            "process_cpu_us_per_turn": self.process,
        }


def cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU time of these processes (Linux), None elsewhere."""
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


class Clients:
    """The client processes, started once and reused by every phase."""

    def __init__(self, settings: Settings, processes: int) -> None:
        context = multiprocessing.get_context("spawn")  # no event loop or client inherited
        self.counters = context.RawArray("q", processes)
        self.state = context.RawValue("i", STOP)
        self.connections: list[multiprocessing.connection.Connection] = []
        self.processes: list[Any] = []
        for index in range(processes):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=client_process, args=(index, theirs, self.counters, self.state, settings), daemon=True
            )
            process.start()
            self.connections.append(mine)
            self.processes.append(process)
        self.replies("ready", timeout=120)

    def replies(self, expected: str, timeout: float) -> list[Any]:
        """Each process' next reply, which must be ``expected``."""
        answers: list[Any] = []
        deadline = time.monotonic() + timeout
        for process, connection in zip(self.processes, self.connections, strict=True):
            while not connection.poll(0.5):
                if not process.is_alive():
                    raise RuntimeError(f"client process {process.pid} died (exit code {process.exitcode})")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"client process {process.pid} sent no {expected!r} in {timeout} s")
            kind, payload = connection.recv()
            if kind != expected:
                raise RuntimeError(f"client process {process.pid}: {kind}: {payload}")
            answers.append(payload)
        return answers

    def send(self, *message: Any) -> None:
        for connection in self.connections:
            connection.send(message)

    def turns(self) -> int:
        return sum(self.counters)

    def cpu(self) -> float | None:
        return cpu_seconds([p.pid for p in self.processes])

    def close(self) -> None:
        self.state.value = STOP
        for connection, process in zip(self.connections, self.processes, strict=True):
            with contextlib.suppress(OSError):  # a process that died has closed its end
                connection.send(("exit", None))
            process.join(10)
            if process.is_alive():
                process.terminate()


async def run_phase(
    client: redis.asyncio.Redis, clients: Clients, path: str, settings: Settings, warmup: float, seconds: float
) -> Phase:
    await client.flushall()
    clients.send("phase", path)
    clients.replies("prefilled", timeout=300)
    clients.state.value = RUNNING
    clients.send("go", None)
    await asyncio.sleep(warmup)  # connections opened, scripts loaded, caches warm

    clients.state.value = MEASURING
    await client.config_resetstat()
    turns_before, cpu_before = clients.turns(), clients.cpu()
    before, process_before = await snapshot(client)
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    after, process_after = await snapshot(client)
    elapsed = time.perf_counter() - start
    turns_after, cpu_after = clients.turns(), clients.cpu()
    medians = {
        key.removeprefix("latency_percentiles_usec_"): float(value["p50"])
        for key, value in (await client.info("latencystats")).items()
    }
    clients.state.value = STOP
    done = clients.replies("done", timeout=300)

    wrong = [w for d in done for w in d["wrong"]]
    if wrong:
        raise AssertionError(f"{path}: threads do not hold what was saved: {wrong[:5]}")
    nested = NESTED[path]
    by_command: dict[str, dict[str, int]] = {}
    for name, (calls, usec) in after.items():
        was_calls, was_usec = before.get(name, (0, 0))
        if calls != was_calls:
            by_command[name] = {"calls": calls - was_calls, "usec": usec - was_usec}
    latencies = sorted(x for d in done for x in d["latencies"])
    turns = turns_after - turns_before
    if turns <= 0:
        raise AssertionError(f"{path}: no turn completed in the measured window")
    return Phase(
        path=path,
        processes=len(clients.processes),
        sessions=settings.sessions,
        seconds=elapsed,
        turns=turns,
        usec=sum(c["usec"] for name, c in by_command.items() if not nested(name)),
        median_usec=sum(c["calls"] * medians.get(name, 0.0) for name, c in by_command.items() if not nested(name)),
        commands=sum(c["calls"] for c in by_command.values()),
        evalsha=sum(c["calls"] for name, c in by_command.items() if name in CONTAINERS and name != "exec"),
        process_cpu_us=process_after - process_before,
        client_cpu_s=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        latency_ms={
            "p50": 1000 * latencies[len(latencies) // 2],
            "p99": 1000 * latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)],
            "mean": 1000 * statistics.fmean(latencies),
        },
        by_command=by_command,
    )


# -- memory per message (memory.py's way) ----------------------------------------------------


async def measure_memory(url: str, threads: int, paths: Sequence[str], notes: list[str]) -> dict[str, dict[str, Any]]:
    """Bytes per stored message at 960 messages a thread: ``used_memory`` growth and the sum of
    ``MEMORY USAGE`` (memory.py's ``usage``), for upstream and our paths, with memory.py's
    conversations and providers (default options)."""
    try:
        from memory import VARIANTS, Scenario, conversations, thousand, usage
    except ImportError as error:  # memory.py is written against 1.x
        notes.append(f"memory per message left out: {error}")
        return {}
    scenario = Scenario(f"{MEMORY_MESSAGES:,} messages of ~305 B", threads, MEMORY_MESSAGES // 2, thousand)
    written = conversations(scenario)
    results: dict[str, dict[str, Any]] = {}
    for database, name in enumerate([p for p in (STORE, PROVIDER, UPSTREAM) if p in paths], start=1):
        started = time.perf_counter()
        db_url = url.rsplit("/", 1)[0] + f"/{database}"
        client = redis.asyncio.Redis.from_url(db_url)  # measures; the writers have their own connections
        connected = (await client.info("clients"))["connected_clients"]

        async def write_all(name: str = name, db_url: str = db_url) -> None:
            async with writer(name, db_url, VARIANTS) as save:
                if name == UPSTREAM:  # the list is the same however written; a save per turn re-reads it all
                    whole = [[m for turn in turns for m in turn] for turns in written]
                    await asyncio.gather(*(save(f"thread-{n}", messages) for n, messages in enumerate(whole)))
                else:  # our bookkeeping grows with the batches: one save per turn, as memory.py does
                    for number in range(scenario.turns):
                        await asyncio.gather(*(save(f"thread-{n}", t[number]) for n, t in enumerate(written)))

        # Three turns of a thread of its own first: the scripts a thread's first turns run are
        # loaded and the registry exists before the first reading.
        async with writer(name, db_url, VARIANTS) as save:
            for messages in written[0][:3]:
                await save("warm-up", messages)
        # Readings with the writers' connections gone, less the client buffers (the measuring
        # connection's own): the growth of what the keys take.
        await clients_back_to(client, connected)
        memory_before = await used_memory(client)
        usage_before = sum((await usage(client)).values())
        await write_all()
        await clients_back_to(client, connected)
        memory_after = await used_memory(client)
        usage_after = sum((await usage(client)).values())
        messages = threads * MEMORY_MESSAGES
        results[name] = {
            "threads": threads,
            "messages": messages,
            "used_memory_per_message": (memory_after - memory_before) / messages,
            "memory_usage_per_message": (usage_after - usage_before) / messages,
        }
        print(f"memory: {name} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        await client.flushdb()
        await client.aclose()
    return results


@contextlib.asynccontextmanager
async def writer(name: str, url: str, variants: dict[str, Callable[[str], Any]]) -> AsyncIterator[Any]:
    """``save(thread, messages)`` through ``name``'s public API on connections of its own, closed after."""
    if name == STORE:
        client = redis.asyncio.Redis.from_url(url)

        async def add(thread: str, messages: Sequence[Any]) -> None:
            await RedisChatMessageStore(redis_client=client, thread_id=thread).add_messages(messages)

        try:
            yield add
        finally:
            await client.aclose()
    else:
        provider = variants["upstream" if name == UPSTREAM else "ours"](url)
        try:
            yield provider.save_messages
        finally:
            await provider.aclose()


async def used_memory(client: redis.asyncio.Redis) -> int:
    """``used_memory`` less client buffers (``mem_clients_normal``)."""
    info = await client.info("memory")
    return int(info["used_memory"]) - int(info["mem_clients_normal"])


async def clients_back_to(client: redis.asyncio.Redis, count: int) -> None:
    """Wait (30 s at most) until the server has dropped the connections beyond ``count``."""
    for _ in range(3000):
        if (await client.info("clients"))["connected_clients"] <= count:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"more than {count} connections still open after 30 s")


# -- report ----------------------------------------------------------------------------------


def report(phases: dict[str, Phase], memory: dict[str, dict[str, Any]], notes: list[str], settings: Settings) -> None:
    cores = os.cpu_count() or 1
    sample = next(iter(phases.values()))
    print(f"\n{sample.processes} client processes x {settings.sessions} sessions, one thread each; threads of "
          f"{settings.history:,} messages, max_messages={settings.max_messages:,}, ttl={TTL}, one label; "
          f"a turn is a user and an assistant message; {cores} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    for note in notes:
        print(f"NOTE {note}")
    floor = phases.get(FLOOR)

    def vs(value: float, base: float | None) -> str:
        return f"{value / base:.2f}x" if base else "—"

    print("Redis CPU per turn, the scale figure: commandstats usec (each command once: mean, and the sum of each "
          "command's median times its calls), the server process' CPU time (user + system)\n")  # fmt: skip
    print("| path | turns | Redis CPU per turn | vs floor | from medians | vs floor | server process CPU per turn "
          "| vs floor | turns/s per Redis core | commands per turn |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in phases.values():
        print(
            f"| {p.path} | {p.turns:,} | {p.cpu:.1f} µs | **{vs(p.cpu, floor and floor.cpu)}** "
            f"| {p.median_cpu:.1f} µs | **{vs(p.median_cpu, floor and floor.median_cpu)}** | {p.process:.1f} µs "
            f"| **{vs(p.process, floor and floor.process)}** | {1e6 / p.process:,.0f} | {p.commands / p.turns:.1f} |"
        )
    print(f"\nThroughput on this machine ({sample.seconds:.0f} s windows)\n")
    print("| path | turns/s | vs floor | latency p50 / p99 | Redis busy | clients' CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for p in phases.values():
        clients = "—" if p.client_cpu_s is None else f"{p.client_cpu_s / p.seconds:.2f} cores"
        print(
            f"| {p.path} | {p.rate:,.0f} | {vs(p.rate, floor and floor.rate)} "
            f"| {p.latency_ms['p50']:.0f} / {p.latency_ms['p99']:.0f} ms "
            f"| {p.process_cpu_us / p.seconds / 1e6:.0%} | {clients} |"
        )
    busiest = max(p.process_cpu_us / p.seconds / 1e6 for p in phases.values())
    print(f"\nNOTE turns/s measure the whole machine ({cores} cores shared by {sample.processes} Python client "
          f"processes, redis-server, which was at most {busiest:.0%} busy, and whatever else runs): the clients "
          "saturate first, so Redis CPU per turn is the scale figure. 'turns/s per Redis core' is 1 s / the server "
          "process' CPU per turn: what one Redis core (one shard) would serve with clients to spare. commandstats "
          "usec is wall time inside each command: on a busy machine a descheduled server inflates the mean; the "
          "medians and the process CPU are not.")  # fmt: skip
    if memory:
        base = memory.get(UPSTREAM)
        print(f"\nMemory per stored message at {MEMORY_MESSAGES:,} messages a thread (memory.py's ~305-byte messages, "
              "default options; ours saved a turn at a time, upstream a thread at a time: its list is the same "
              "either way)\n")  # fmt: skip
        print("| path | threads | MEMORY USAGE per message | vs upstream | used_memory growth per message "
              "| vs upstream |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        for name, m in memory.items():
            used, keys = m["used_memory_per_message"], m["memory_usage_per_message"]
            ratio_used = f"{used / base['used_memory_per_message']:.2f}x" if base else "—"
            ratio_keys = f"{keys / base['memory_usage_per_message']:.2f}x" if base else "—"
            print(f"| {name} | {m['threads']} | {keys:,.0f} B | **{ratio_keys}** | {used:,.0f} B | {ratio_used} |")
        messages = next(iter(memory.values()))["messages"]
        print(f"\nMEMORY USAGE (summed over every key written, memory.py's figure) is exact. used_memory growth (less "
              "client buffers, the writers' connections closed) also moves with what no key owns, such as the "
              f"scripts' reply buffers: about ±50 KB, ±{50_000 / messages:.0f} B a message over these "
              f"{messages:,}.")  # fmt: skip


def draw(phases: dict[str, Phase], memory: dict[str, dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib  # pyright: ignore[reportMissingImports]
    except ImportError:
        print("\nno chart: matplotlib is not installed (the bench group has it)")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pyright: ignore[reportMissingImports]

    panels = 3 if memory else 2
    figure, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.4))
    names = list(phases)
    colors = [f"C{PATHS.index(n)}" for n in names]
    labels = [n.replace(" save_messages", "\nsave_messages") for n in names]
    floor = phases.get(FLOOR)

    def bars(axis: Any, values: list[float], base: float | None, unit: str) -> None:
        drawn = axis.bar(labels, values, color=colors)
        texts = [f"{v:,.0f}{unit}" + (f"\n{v / base:.1f}x" if base else "") for v in values]
        axis.bar_label(drawn, labels=texts, fontsize=7)
        axis.tick_params(axis="x", labelsize=7)
        axis.grid(True, axis="y", alpha=0.3)
        axis.margins(y=0.2)

    sample = phases[names[0]]
    bars(axes[0], [phases[n].rate for n in names], floor and floor.rate, "")
    axes[0].set_title(f"turns/s ({sample.processes} processes x {sample.sessions} sessions)", fontsize=9)
    width = 0.27
    x = range(len(names))
    series = (
        ("commandstats usec (mean)", [phases[n].cpu for n in names], floor and floor.cpu),
        ("commandstats, from medians", [phases[n].median_cpu for n in names], floor and floor.median_cpu),
        ("server process CPU", [phases[n].process for n in names], floor and floor.process),
    )
    for i, (label, values, base) in enumerate(series):
        drawn = axes[1].bar([j + (i - 1) * width for j in x], values, width, label=label)
        texts = [f"{v:.0f}" + (f"\n{v / base:.1f}x" if base else "") for v in values]
        axes[1].bar_label(drawn, labels=texts, fontsize=6)
    axes[1].set_xticks(list(x), labels)
    axes[1].tick_params(axis="x", labelsize=7)
    axes[1].set_title("Redis CPU per turn (µs), the scale figure", fontsize=9)
    axes[1].grid(True, axis="y", alpha=0.3)
    axes[1].margins(y=0.2)
    axes[1].legend(fontsize=7, loc="upper left")
    if memory:
        mem_names = list(memory)
        base = memory.get(UPSTREAM)
        for i, (field, label) in enumerate(
            (("memory_usage_per_message", "MEMORY USAGE"), ("used_memory_per_message", "used_memory growth"))
        ):
            values = [memory[n][field] for n in mem_names]
            drawn = axes[2].bar([j + (i - 0.5) * width for j in range(len(mem_names))], values, width, label=label)
            texts = [f"{v:,.0f}" + (f"\n{v / base[field]:.2f}x" if base else "") for v in values]
            axes[2].bar_label(drawn, labels=texts, fontsize=6)
        axes[2].set_xticks(range(len(mem_names)), [n.replace(" save_messages", "\nsave_messages") for n in mem_names])
        axes[2].tick_params(axis="x", labelsize=7)
        axes[2].grid(True, axis="y", alpha=0.3)
        axes[2].margins(y=0.2)
        axes[2].legend(fontsize=7, loc="upper left")
        axes[2].set_title(f"bytes per stored message ({MEMORY_MESSAGES} a thread)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


async def main(arguments: argparse.Namespace) -> None:
    notes: list[str] = []
    paths = available_paths(arguments.paths, notes)
    max_messages = arguments.max_messages or arguments.history
    with EmbeddedRedis() as server:
        settings = Settings(server.url, arguments.sessions, arguments.history, max_messages)
        client = redis.asyncio.Redis.from_url(server.url)
        version = (await client.info("server"))["redis_version"]
        start = time.perf_counter()
        clients = Clients(settings, arguments.processes)
        print(f"{arguments.processes} client processes ready ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
        phases: dict[str, Phase] = {}
        try:
            for path in paths:
                start = time.perf_counter()
                phases[path] = await run_phase(client, clients, path, settings, arguments.warmup, arguments.seconds)
                p = phases[path]
                print(f"{path}: {p.rate:,.0f} turns/s, {p.cpu:.1f} µs Redis CPU per turn "
                      f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)  # fmt: skip
        finally:
            clients.close()
        await client.flushall()
        memory = (
            {}
            if arguments.memory_threads == 0
            else await measure_memory(server.url, arguments.memory_threads, paths, notes)
        )
        await client.aclose()
    print(f"\nredis-server {version}")
    report(phases, memory, notes, settings)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "redis_version": version,
        "settings": {**asdict(settings), "url": None, "processes": arguments.processes},
        "window_s": arguments.seconds,
        "cpu_count": os.cpu_count(),
        "notes": notes,
        "phases": {name: p.summary() for name, p in phases.items()},
        "memory": memory,
    }
    name = arguments.out or ("throughput_quick" if arguments.quick else "throughput")
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    if draw(phases, memory, RESULTS / f"{name}.png"):
        print(f"\nchart: {RESULTS / f'{name}.png'}")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run: 2 x 8 sessions, 3 s a path, 1 memory thread")
    parser.add_argument("--processes", type=int, help="client processes (default 4)")
    parser.add_argument("--sessions", type=int, help="concurrent sessions per process, a thread each (default 64)")
    parser.add_argument("--history", type=int, help="messages per thread before the run (default 100)")
    parser.add_argument("--max-messages", type=int, help="max_messages (default: --history, so every turn trims)")
    parser.add_argument("--warmup", type=float, help="seconds of turns before each window (default 2)")
    parser.add_argument("--seconds", type=float, help="measured seconds per path (default 10)")
    parser.add_argument("--memory-threads", type=int, help="threads of 960 messages per path (default 8; 0: none)")
    parser.add_argument("--out", help="results/<OUT>.json and .png (default throughput, throughput_quick with --quick)")
    parser.add_argument("--path", dest="paths", action="append", choices=PATHS, help="only this path (repeatable)")
    arguments = parser.parse_args(argv)
    defaults = {"processes": 4, "sessions": 64, "history": 100, "warmup": 2.0, "seconds": 10.0, "memory_threads": 8}
    if arguments.quick:
        defaults |= {"processes": 2, "sessions": 8, "history": 20, "warmup": 1.0, "seconds": 3.0, "memory_threads": 1}
    for name, value in defaults.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, value)
    arguments.paths = arguments.paths or list(PATHS)
    if arguments.history < 2 or arguments.history % 2:
        parser.error(f"--history must be an even number of at least 2 (whole turns), got {arguments.history}")
    if arguments.max_messages is not None and arguments.max_messages < arguments.history:
        parser.error(f"--max-messages must be at least --history ({arguments.history}), got {arguments.max_messages}")
    for name in ("processes", "sessions"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(arguments, name)}")
    return arguments


if __name__ == "__main__":
    asyncio.run(main(parse()))
