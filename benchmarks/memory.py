"""Redis memory per message and per thread: ours and upstream's, in one run.

Run (the bench environment has upstream's 1.x ``RedisHistoryProvider``):

    UV_PROJECT_ENVIRONMENT=.venv-bench uv run --locked --group bench python benchmarks/memory.py

Each variant writes the same conversations through the 1.x ``HistoryProvider`` API, one
``save_messages`` call per run (the run's input and response, as ``after_run`` saves them),
into a database of its own on one private redis-server; then ``MEMORY USAGE key SAMPLES 0``
of every key in that database is summed. That is everything the variant keeps: for ours the
message list, its index, the batch tokens, the fingerprints, the meta hash and the thread's
share of the registry (``registry=False`` drops the last two); for upstream its message list.

Variants: ``RedisChatHistoryProvider`` (ours, defaults), ours with ``compression="zlib"``, and
``RedisHistoryProvider`` (agent-framework-redis 1.x, default scoped keys). The messages are
what an agent run with an OpenAI chat client stores: user inputs without ids, responses with
``chatcmpl-`` ids and the agent's name, tool calls with ``call_`` ids and JSON arguments, tool
results as the framework's function invocation makes them. Texts are English prose drawn
(seeded) from the standard library's docstrings, tool results JSON records: both compress
about as real ones do. Prints Markdown tables; writes ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import re
import string
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio
from agent_framework import Content, Message

from agent_framework_redis_store import RedisChatHistoryProvider
from agent_framework_redis_store.testing import EmbeddedRedis

RESULTS = Path(__file__).parent / "results"
TARGET = 0.8  # at most this many bytes per message of upstream's


# -- the conversations -------------------------------------------------------------------


def _sentences() -> list[str]:
    """English sentences from the docstrings of a fixed set of standard-library modules."""
    import argparse as m1
    import asyncio as m2
    import collections as m3
    import email.message as m4
    import http.client as m5
    import json as m6
    import logging as m7
    import pathlib as m8
    import sqlite3 as m9
    import subprocess as m10

    texts: list[str] = []
    for module in (m1, m2, m3, m4, m5, m6, m7, m8, m9, m10):
        for _, member in sorted(vars(module).items()):
            doc = inspect.getdoc(member) if callable(member) else None
            if doc:
                texts.append(" ".join(doc.split()))
    sentences = [s for text in texts for s in re.split(r"(?<=[.!?])\s+", text) if 20 <= len(s) <= 400]
    return list(dict.fromkeys(sentences))  # each once, in a stable order


SENTENCES = _sentences()


class Writer:
    """Seeded texts, ids and tool results of realistic sizes."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def randint(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    def prose(self, size: int) -> str:
        start = self.random.randrange(len(SENTENCES))
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < size:
            parts.append(SENTENCES[(start + len(parts)) % len(SENTENCES)])
        return " ".join(parts)

    def question(self, size: int) -> str:
        return self.prose(size).rstrip(".") + "?"

    def answer(self, size: int) -> str:
        """Markdown: a lead paragraph, a list, a closing paragraph."""
        if size < 600:
            return self.prose(size)
        lead, closing = self.prose(size // 3), self.prose(size // 4)
        items = "\n".join(f"- {self.prose(80)}" for _ in range(max(1, (size - len(lead) - len(closing)) // 90)))
        return f"{lead}\n\n{items}\n\n{closing}"

    def token(self, length: int) -> str:
        return "".join(self.random.choices(string.ascii_letters + string.digits, k=length))

    def record(self) -> dict[str, Any]:
        return {
            "id": self.random.randrange(10**6),
            "title": self.prose(40)[:60],
            "url": f"https://docs.example.com/{self.token(8).lower()}/{self.token(6).lower()}",
            "score": round(self.random.random(), 3),
            "snippet": self.prose(160)[:200],
        }


def response(writer: Writer, contents: Sequence[Content | str]) -> Message:
    return Message(
        role="assistant", contents=contents, author_name="assistant", message_id=f"chatcmpl-{writer.token(29)}"
    )


def short_chat(writer: Writer, turn: int) -> list[Message]:
    return [
        Message(role="user", contents=[writer.question(writer.randint(30, 120))]),
        response(writer, [writer.answer(writer.randint(80, 400))]),
    ]


def long_answers(writer: Writer, turn: int) -> list[Message]:
    return [
        Message(role="user", contents=[writer.question(writer.randint(60, 240))]),
        response(writer, [writer.answer(writer.randint(1500, 4000))]),
    ]


def tool_heavy(writer: Writer, turn: int) -> list[Message]:
    """A question, two parallel tool calls, their results, the answer."""
    calls = [
        Content.from_function_call(
            call_id=f"call_{writer.token(24)}",
            name=name,
            arguments=json.dumps({"query": writer.prose(30)[:50], "top_k": 3}),
        )
        for name in ("search_docs", "search_tickets")
    ]
    results = [
        Content.from_function_result(call_id=call.call_id or "", result=json.dumps([writer.record() for _ in range(3)]))
        for call in calls
    ]
    return [
        Message(role="user", contents=[writer.question(writer.randint(40, 160))]),
        response(writer, calls),
        Message(role="tool", contents=results),
        response(writer, [writer.answer(writer.randint(200, 800))]),
    ]


def thousand(writer: Writer, turn: int) -> list[Message]:
    """The reference of issue 11: 1,000 messages of about 305 bytes of text."""
    return [
        Message(role="user", contents=[writer.prose(305)[:305]]),
        response(writer, [writer.prose(305)[:305]]),
    ]


@dataclass(frozen=True)
class Scenario:
    name: str
    threads: int
    turns: int
    turn: Callable[[Writer, int], list[Message]]


SCENARIOS = [
    Scenario("short chat", threads=20, turns=10, turn=short_chat),
    Scenario("short chat, longer threads", threads=5, turns=50, turn=short_chat),
    Scenario("long answers", threads=10, turns=10, turn=long_answers),
    Scenario("tool-heavy turns", threads=10, turns=8, turn=tool_heavy),
    Scenario("1,000 messages of ~305 B", threads=1, turns=500, turn=thousand),
]


def conversations(scenario: Scenario) -> list[list[list[Message]]]:
    """Per thread, its turns: the same for every variant."""
    writer = Writer(seed=zlib.crc32(scenario.name.encode()))
    return [[scenario.turn(writer, n) for n in range(scenario.turns)] for _ in range(scenario.threads)]


# -- the variants ------------------------------------------------------------------------


def ours(**options: Any) -> Callable[[str], Any]:
    return lambda url: RedisChatHistoryProvider(url, **options)


def upstream(url: str) -> Any:
    from agent_framework_redis import RedisHistoryProvider  # pyright: ignore[reportMissingImports]

    return RedisHistoryProvider(redis_url=url, application_id="bench")


VARIANTS: dict[str, Callable[[str], Any]] = {
    "upstream": upstream,
    "ours": ours(),
    "ours, zlib": ours(compression="zlib"),
}


async def usage(client: redis.asyncio.Redis) -> dict[str, int]:
    """MEMORY USAGE of every key in the database, summed by kind (the key's last segment for ours)."""
    kinds: dict[str, int] = {}
    async for key in client.scan_iter(count=1000):
        kind = "list"
        name = key.decode()
        if name.endswith(":registry"):
            kind = "registry"
        elif "}:" in name:
            kind = name.rsplit(":", 1)[1]
        kinds[kind] = kinds.get(kind, 0) + (await client.memory_usage(key, samples=0) or 0)
    return kinds


async def measure(url: str, scenario: Scenario, variant: str) -> dict[str, Any]:
    provider = VARIANTS[variant](url)
    threads = conversations(scenario)
    for number, turns in enumerate(threads):
        for turn, messages in enumerate(turns):
            # The last run of each thread with a key of its own, to retry it below.
            key = f"run-{number}" if turn == len(turns) - 1 else None
            await provider.save_messages(f"thread-{number}", messages, idempotency_key=key)
    messages = sum(len(m) for turns in threads for m in turns)
    client = redis.asyncio.Redis.from_url(url)
    kinds = await usage(client)
    # The guarantees the bookkeeping pays for, after measuring: a retried save and a replayed
    # transcript store nothing.
    retried = replayed = True
    for number, turns in enumerate(threads):
        session_id = f"thread-{number}"
        before = len(await provider.get_messages(session_id))
        await provider.save_messages(session_id, turns[-1], idempotency_key=f"run-{number}")
        retried &= len(await provider.get_messages(session_id)) == before
        await provider.save_messages(session_id, [m for turn in turns for m in turn])
        replayed &= len(await provider.get_messages(session_id)) == before == len(turns) * len(turns[0])
    await provider.aclose()
    await client.flushdb()
    await client.aclose()
    return {
        "messages": messages,
        "threads": len(threads),
        "bytes": sum(kinds.values()),
        "kinds": kinds,
        "retry recognised": retried,
        "replay recognised": replayed,
    }


def text_bytes(scenario: Scenario) -> float:
    """Average bytes per message of its text, call arguments and results: what any store must keep."""
    sizes = [
        sum(len(str(c.text or c.arguments or c.result or "").encode()) for c in message.contents)
        for turns in conversations(scenario)
        for turn in turns
        for message in turn
    ]
    return sum(sizes) / len(sizes)


def report(results: dict[str, dict[str, Any]]) -> bool:
    names = list(VARIANTS)
    print("\nRedis memory (MEMORY USAGE of every key written), bytes per message and per thread;")
    print("in brackets: of upstream's bytes per message\n")
    print("| scenario | messages / thread | text B / message | " + " | ".join(f"{n} B / message" for n in names)
          + " | " + " | ".join(f"{n} B / thread" for n in names) + " |")  # fmt: skip
    print("|---|---:|---:|" + "---:|" * (2 * len(names)))
    checks: list[tuple[str, bool]] = []
    for scenario, r in results.items():
        base = r["upstream"]["bytes"] / r["upstream"]["messages"]
        ratios = {n: r[n]["bytes"] / r[n]["messages"] / base for n in names}
        cells = [
            f"{r[n]['bytes'] / r[n]['messages']:,.0f}" + ("" if n == "upstream" else f" ({ratios[n]:.2f}x)")
            for n in names
        ]
        per_thread = [f"{r[n]['bytes'] / r[n]['threads']:,.0f}" for n in names]
        messages = r["upstream"]["messages"] // r["upstream"]["threads"]
        print(f"| {scenario} | {messages:,} | {r['text']:,.0f} | " + " | ".join(cells + per_thread) + " |")
        ours = {n: ratio for n, ratio in ratios.items() if n != "upstream"}
        best = min(ours, key=ours.__getitem__)
        shown = ", ".join(f"{n} {ratio:.2f}x" for n, ratio in ours.items())
        checks.append((f"{scenario}: {shown} (target: at most {TARGET}x, best: {best})", ours[best] <= TARGET))
        for name in names:
            for guarantee in ("retry recognised", "replay recognised"):
                if not r[name][guarantee]:
                    checks.append((f"{scenario}: {name}: {guarantee}", False))
    print("\nOurs by key, bytes per message:\n")
    kinds = ["list", "index", "fingerprints", "batches", "meta", "registry"]
    print("| scenario | variant | " + " | ".join(kinds) + " |")
    print("|---|---|" + "---:|" * len(kinds))
    for scenario, by_variant in results.items():
        for name in names[1:]:
            r = by_variant[name]
            cells = [f"{r['kinds'].get(k, 0) / r['messages']:,.1f}" for k in kinds]
            print(f"| {scenario} | {name} | " + " | ".join(cells) + " |")
    print()
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'MISS'} {text}")
    return all(ok for _, ok in checks)


async def main(only: list[str], variants: list[str]) -> bool:
    for name in [v for v in VARIANTS if variants and v not in variants]:
        del VARIANTS[name]
    results: dict[str, dict[str, Any]] = {}
    with EmbeddedRedis() as server:
        for scenario in SCENARIOS:
            if only and scenario.name not in only:
                continue
            results[scenario.name] = {"text": text_bytes(scenario)}
            for database, variant in enumerate(VARIANTS, start=1):
                url = server.url.rsplit("/", 1)[0] + f"/{database}"
                results[scenario.name][variant] = await measure(url, scenario, variant)
                print(f"{scenario.name}: {variant} done", file=sys.stderr)
    ok = report(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(results, indent=2))
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", action="append", default=[], help="run only this scenario (repeatable)")
    parser.add_argument("--variant", action="append", default=[], choices=list(VARIANTS), help="only this variant")
    arguments = parser.parse_args()
    sys.exit(0 if asyncio.run(main(arguments.scenario, arguments.variant)) else 1)
