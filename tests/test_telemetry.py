"""Telemetry: the spans and the duration histogram, read back through the SDK's in-memory exporter and reader.

Each test hands its own SDK providers to ``configure_telemetry`` (the process's global
providers stay unset, so the rest of the suite runs with no SDK); the global path is tested
in a child process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from agent_framework_redis_store import (
    CorruptMessageError,
    RedisChatMessageStore,
    RedisStoreError,
    RedisThreadRegistry,
    SummaryCompaction,
    configure_telemetry,
)
from agent_framework_redis_store._core import lua, telemetry
from agent_framework_redis_store._core import thread as thread_module
from agent_framework_redis_store._core.codec import message_from_dict

NS = "agent_framework_redis_store."
# What must never reach telemetry: message text, a label's value, a Redis password.
SECRET_TEXT = "my card number is 4111 1111 1111 1111"
SECRET_LABEL = "alice@example.com"
PASSWORD = "Tr0ub4dor-and-3"


def message(role: str, text: str) -> Any:
    return message_from_dict({"role": role, "contents": [{"type": "text", "text": text}]})


def chat(turns: int, text: str = "fact") -> list[Any]:
    return [message(role, f"{text} {n} ({role})") for n in range(turns) for role in ("user", "assistant")]


class Recorded:
    """What the SDK received: finished spans and the duration histogram's points."""

    def __init__(self, sampler: Any = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, operation: str | None = None) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if operation is None or s.name == NS + operation]

    def one(self, operation: str) -> ReadableSpan:
        (span,) = self.spans(operation)
        return span

    def clear(self) -> None:
        self.exporter.clear()

    def durations(self) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        points: list[HistogramDataPoint] = []
        for resource in data.resource_metrics if data is not None else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == NS + "operation.duration":
                        assert metric.unit == "s"
                        points.extend(p for p in metric.data.data_points if isinstance(p, HistogramDataPoint))
        return points


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes, this package's without their namespace."""
    return {key.removeprefix(NS): value for key, value in (span.attributes or {}).items()}


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def common(operation: str, function: str) -> dict[str, Any]:
    return {"db.system.name": "redis", "db.operation.name": operation, "code.function.name": NS + function}


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    recorded = Recorded()
    configure_telemetry(tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider)
    try:
        yield recorded
    finally:
        configure_telemetry()
        recorded.tracer_provider.shutdown()
        recorded.meter_provider.shutdown()


@pytest.fixture
async def scripts_loaded(raw: redis.asyncio.Redis) -> None:
    """Every script already on the server, so each script call is exactly one round trip."""
    for script in vars(lua).values():
        if isinstance(script, lua.Script):
            await raw.script_load(script.source)


async def stored_bytes(raw: redis.asyncio.Redis, key: str, start: int, end: int) -> int:
    return sum(len(entry) for entry in await raw.lrange(key, start, end))


# -- the store ------------------------------------------------------------------------------


async def test_store_save_load_and_transcript(redis_url: str, raw: redis.asyncio.Redis, recorded: Recorded) -> None:
    await raw.script_flush()  # the first save finds no script: EVALSHA, SCRIPT LOAD, EVALSHA
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=10, context_messages=3) as store:
        await store.add_messages([message("user", "one"), message("assistant", "two é")])
        await store.add_messages([message("user", "three")], idempotency_key="k")
        await store.add_messages([message("user", "three")], idempotency_key="k")  # a retry: already applied
        loaded = await store.list_messages()
        await store.list_messages(last=1)
        await store.transcript(last=2)
        key = store.redis_key

    first, second, retry = recorded.spans("save")
    assert first.kind == SpanKind.INTERNAL
    assert first.status.status_code == StatusCode.UNSET
    assert attrs(first) == {
        **common("save", "RedisChatMessageStore.add_messages"),
        "key_prefix": "chat_messages",
        "encrypted": False,
        "dedupe": False,
        "batch.messages": 2,
        "bytes.sent": await stored_bytes(raw, key, 0, 1),  # UTF-8 bytes, as stored
        "max_messages": 10,
        "batch.already_applied": False,
        "messages.written": 2,
        "messages.skipped": 0,
        "thread.messages": 2,
        "round_trips": 3,
    }
    assert attrs(second)["round_trips"] == 1
    assert attrs(second)["thread.messages"] == 3
    assert {k: v for k, v in attrs(retry).items() if k.startswith(("batch", "messages", "thread"))} == {
        "batch.messages": 1,
        "batch.already_applied": True,
        "messages.written": 0,
        "messages.skipped": 1,
    }

    window, last_one = recorded.spans("load")
    assert len(loaded) == 3
    assert attrs(window) == {
        **common("load", "RedisChatMessageStore.list_messages"),
        "key_prefix": "chat_messages",
        "encrypted": False,
        "messages.read": 3,
        "bytes.received": await stored_bytes(raw, key, -3, -1),
        "summary": False,
        "messages.unsummarized": 3,
        "window.max_messages": 3,
        "messages.returned": 3,
        "round_trips": 3,  # READ_CONTEXT's first use: loaded too
    }
    assert (attrs(last_one)["window.max_messages"], attrs(last_one)["round_trips"]) == (1, 1)
    assert attrs(recorded.one("transcript")) == {
        **common("transcript", "RedisChatMessageStore.transcript"),
        "key_prefix": "chat_messages",
        "encrypted": False,
        "messages.read": 2,
        "bytes.received": await stored_bytes(raw, key, -2, -1),
        "messages.returned": 2,
        "window.max_messages": 2,
        "round_trips": 1,
    }


async def test_dedupe_saves_count_what_they_skipped(redis_url: str, scripts_loaded: None, recorded: Recorded) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="d") as store:
        turn = chat(1)
        await store.add_new_messages(turn)
        await store.add_new_messages([*turn, *chat(1, "more")])  # the replayed turn, then a new one
        await store.add_new_messages(turn, idempotency_key="once")
        await store.add_new_messages(turn, idempotency_key="once")
    counts = [
        {k: attrs(s)[k] for k in ("dedupe", "batch.messages", "messages.written", "messages.skipped", "round_trips")}
        for s in recorded.spans("save")
    ]
    assert counts == [
        {"dedupe": True, "batch.messages": 2, "messages.written": 2, "messages.skipped": 0, "round_trips": 1},
        {"dedupe": True, "batch.messages": 4, "messages.written": 2, "messages.skipped": 2, "round_trips": 1},
        {"dedupe": True, "batch.messages": 2, "messages.written": 2, "messages.skipped": 0, "round_trips": 1},
        {"dedupe": True, "batch.messages": 2, "messages.written": 0, "messages.skipped": 2, "round_trips": 1},
    ]
    assert "batch.already_applied" not in attrs(recorded.spans("save")[0])  # the script does not tell


async def test_a_seed_is_counted_with_the_save_that_writes_it(redis_url: str, recorded: Recorded) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="s", messages=chat(1)) as store:
        await store.add_messages([message("user", "hi")])
    save = attrs(recorded.one("save"))
    assert (save["seed.messages"], save["batch.messages"], save["messages.written"]) == (2, 1, 3)


class Summarizer:
    """A chat client whose summary is a fixed phrase; ``fail`` makes it raise."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail

    async def get_response(self, request: Any) -> Any:
        if self.fail is not None:
            raise self.fail
        return SimpleNamespace(text="they talked about facts")


async def test_compaction_and_its_summarizer_call(
    redis_url: str, raw: redis.asyncio.Redis, scripts_loaded: None, recorded: Recorded
) -> None:
    policy = SummaryCompaction(Summarizer(), trigger_messages=4, keep_last_messages=2, background=False)
    async with RedisChatMessageStore(redis_url, thread_id="c", compaction=policy) as store:
        await store.add_messages(chat(3))
        recorded.clear()
        assert (await store.compact()).compacted
        assert not (await store.compact(force=False)).compacted
        key = store.redis_key

    compacted, not_due = recorded.spans("compact")
    summarize = recorded.one("summarize")
    assert parent_of(summarize) == span_id(compacted)
    assert attrs(summarize) == {
        **common("summarize", "SummaryCompaction.summarize"),
        "batch.messages": 4,
        "summary.previous": False,
    }
    assert attrs(compacted) == {
        **common("compact", "ThreadStorage.compact"),
        "key_prefix": "chat_messages",
        "encrypted": False,
        "compaction.forced": False,
        "compaction.keep_last_messages": 2,
        "compaction.trigger_messages": 4,
        "messages.read": 6,
        "bytes.received": await stored_bytes(raw, key, 0, -1),
        "summary": False,
        "messages.unsummarized": 6,
        "compaction.compacted": True,
        "compaction.reason": "compacted",
        "messages.summarized": 4,
        "round_trips": 4,  # SET (the lease), READ_CONTEXT, COMMIT_SUMMARY, RELEASE_LEASE
    }
    assert {k: attrs(not_due)[k] for k in ("summary", "messages.unsummarized", "compaction.reason", "round_trips")} == {
        "summary": True,
        "messages.unsummarized": 2,
        "compaction.reason": "not due",
        "round_trips": 3,
    }


async def test_a_background_compaction_is_a_child_of_the_save_that_started_it(
    redis_url: str, recorded: Recorded
) -> None:
    policy = SummaryCompaction(Summarizer(), trigger_messages=4, keep_last_messages=2)
    async with RedisChatMessageStore(redis_url, thread_id="bg", compaction=policy) as store:
        await store.add_messages(chat(3))
        await store.wait_for_compaction()
    save, compact = recorded.one("save"), recorded.one("compact")
    assert parent_of(compact) == span_id(save)
    assert attrs(compact)["compaction.compacted"] is True
    assert "compaction.reason" not in attrs(save)  # each operation's attributes stay its own


async def test_a_span_of_the_caller_is_the_parent(redis_url: str, recorded: Recorded) -> None:
    tracer = recorded.tracer_provider.get_tracer("app")
    async with RedisChatMessageStore(redis_url, thread_id="p") as store:
        with tracer.start_as_current_span("turn") as turn:
            await store.add_messages([message("user", "hi")])
            await store.list_messages()
    for span in recorded.spans("save") + recorded.spans("load"):
        assert parent_of(span) == turn.get_span_context().span_id


# -- the framework's paths ------------------------------------------------------------------


@pytest.mark.legacy
async def test_a_legacy_agent_thread_saves_and_a_resumed_one_loads(redis_url: str, recorded: Recorded) -> None:
    # The framework's own AgentThread calls, as a legacy agent's turn makes them.
    from agent_framework import AgentThread  # pyright: ignore[reportAttributeAccessIssue]

    async with RedisChatMessageStore(redis_url, thread_id="legacy") as store:
        thread = AgentThread(message_store=store)
        await thread.on_new_messages(chat(1))
        state = await thread.serialize()
    async with RedisChatMessageStore(redis_url) as store:
        resumed = await AgentThread.deserialize(state, message_store=store)
        recorded.clear()
        assert len(await resumed.message_store.list_messages()) == 2
        await resumed.on_new_messages(chat(1, "more"))
    load, save = recorded.spans()
    assert attrs(load)["code.function.name"] == NS + "RedisChatMessageStore.list_messages"
    assert attrs(load)["messages.returned"] == 2
    assert attrs(save)["code.function.name"] == NS + "RedisChatMessageStore.add_messages"
    assert (attrs(save)["messages.written"], attrs(save)["thread.messages"]) == (2, 4)


@pytest.mark.current
async def test_provider_save_and_get(redis_url: str, scripts_loaded: None, recorded: Recorded) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url, key_prefix="app", context_messages=2) as provider:
        await provider.save_messages("s", chat(1))
        await provider.save_messages("s", [*chat(1), *chat(1, "new")])
        loaded = await provider.get_messages("s")
    first, replay = recorded.spans("save")
    assert attrs(first) == {
        **common("save", "RedisChatHistoryProvider.save_messages"),
        "key_prefix": "app",
        "encrypted": False,
        "dedupe": True,
        "batch.messages": 2,
        "bytes.sent": attrs(first)["bytes.sent"],
        "messages.written": 2,
        "messages.skipped": 0,
        "round_trips": 1,
    }
    assert attrs(first)["bytes.sent"] > 2 * len("fact 0 (assistant)")
    assert (attrs(replay)["messages.written"], attrs(replay)["messages.skipped"]) == (2, 2)
    assert len(loaded) == 2
    assert attrs(recorded.one("load")) == {
        **common("load", "RedisChatHistoryProvider.get_messages"),
        "key_prefix": "app",
        "encrypted": False,
        "messages.read": 2,
        "bytes.received": attrs(recorded.one("load"))["bytes.received"],
        "summary": False,
        "messages.unsummarized": 4,
        "window.max_messages": 2,
        "messages.returned": 2,
        "round_trips": 1,
    }


@pytest.mark.current
async def test_a_1x_agent_turn_loads_then_saves(redis_url: str, recorded: Recorded) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    from .scripted import ScriptedChatClient, make_agent

    async with RedisChatHistoryProvider(redis_url) as provider:
        agent = make_agent(ScriptedChatClient(), context_providers=[provider])
        session = agent.create_session(session_id="user-1")
        await agent.run("hello", session=session)
        await agent.run("again", session=session)
    names = [s.name.removeprefix(NS) for s in recorded.spans()]
    assert names == ["load", "save", "load", "save"]
    second_load, second_save = recorded.spans()[2:]
    assert attrs(second_load)["messages.returned"] == 2
    assert (attrs(second_save)["batch.messages"], attrs(second_save)["messages.written"]) == (2, 2)


# -- the registry ---------------------------------------------------------------------------


async def test_registry_operations(redis_url: str, recorded: Recorded) -> None:
    async with RedisThreadRegistry(redis_url, key_prefix="reg") as registry:
        for name in ("a", "b", "c"):
            labels = {"user": SECRET_LABEL} if name != "c" else {"user": "bob"}
            async with RedisChatMessageStore(redis_url, key_prefix="reg", thread_id=name, labels=labels) as store:
                await store.add_messages(chat(1))
        recorded.clear()
        page = await registry.list_threads(labels={"user": SECRET_LABEL}, limit=1)
        record = await registry.export_thread("a")
        old = datetime.now(UTC) - timedelta(days=60)
        assert await registry.import_thread(dataclasses.replace(record, thread_id="old", last_active=old))
        assert not await registry.import_thread(dataclasses.replace(record, thread_id="old"))
        stats = await registry.stats()
        assert await registry.delete(["b", "nope"]) == 1
        dry = await registry.purge(older_than=timedelta(days=30), dry_run=True)
        await registry.purge(older_than=3600 * 24 * 30)

    assert len(page.threads) == 1
    assert page.next_cursor is not None
    assert attrs(recorded.one("registry.list")) == {
        **common("registry.list", "RedisThreadRegistry.list_threads"),
        "key_prefix": "reg",
        "registry.limit": 1,
        "registry.label_filters": 1,
        "registry.active_since": False,
        "registry.continued": False,
        "threads.returned": 1,
        "registry.more": True,
    }
    assert attrs(recorded.one("registry.export")) == {
        **common("registry.export", "RedisThreadRegistry.export_thread"),
        "key_prefix": "reg",
        "messages.read": 2,
        "summary": False,
    }
    imported, refused = recorded.spans("registry.import")
    assert attrs(imported) == {
        **common("registry.import", "RedisThreadRegistry.import_thread"),
        "key_prefix": "reg",
        "registry.replace": False,
        "batch.messages": 2,
        "summary": False,
        "encrypted": False,
        "registry.imported": True,
        "messages.written": 2,
    }
    assert (attrs(refused)["registry.imported"], attrs(refused)["messages.written"]) == (False, 0)
    assert (stats.threads, stats.messages) == (4, 8)
    assert attrs(recorded.one("registry.stats")) == {
        **common("registry.stats", "RedisThreadRegistry.stats"),
        "key_prefix": "reg",
        "threads.total": 4,
        "messages.total": 8,
        "threads.expired": 0,
    }
    assert attrs(recorded.one("registry.delete")) == {
        **common("registry.delete", "RedisThreadRegistry.delete"),
        "key_prefix": "reg",
        "threads.requested": 2,
        "threads.deleted": 1,
    }
    assert dry.purged == 1
    dry_span, purge = recorded.spans("registry.purge")
    assert attrs(dry_span) == {
        **common("registry.purge", "RedisThreadRegistry.purge"),
        "key_prefix": "reg",
        "registry.dry_run": True,
        "registry.older_than_seconds": 30 * 24 * 3600.0,
        "threads.purged": 1,
        "threads.expired": 0,
        "threads.kept": 0,
    }
    assert (attrs(purge)["registry.dry_run"], attrs(purge)["threads.purged"]) == (False, 1)
    assert all("round_trips" not in attrs(s) for s in recorded.spans())  # counted for one thread's operations only


async def test_erase_reindex_and_fork(redis_url: str, recorded: Recorded) -> None:
    for thread_id in ("a", "b"):
        async with RedisChatMessageStore(
            redis_url=redis_url, thread_id=thread_id, key_prefix="era", labels={"user": "ann"}
        ) as store:
            await store.add_messages(chat(2))
    async with RedisChatMessageStore(redis_url=redis_url, thread_id="a", key_prefix="era") as store:
        await store.fork("a2", upto=3)
    async with RedisThreadRegistry(redis_url, key_prefix="era") as registry:
        assert await registry.reindex() == 3
        await registry.fork("b", "b2")
        receipt = await registry.erase(labels={"user": "ann"})

    assert attrs(recorded.one("fork")) == {
        **common("fork", "RedisChatMessageStore.fork"),
        "key_prefix": "era",
        "fork.upto": 3,
    }
    assert attrs(recorded.one("registry.fork")) == {
        **common("registry.fork", "RedisThreadRegistry.fork"),
        "key_prefix": "era",
    }
    assert attrs(recorded.one("registry.reindex")) == {
        **common("registry.reindex", "RedisThreadRegistry.reindex"),
        "key_prefix": "era",
        "threads.indexed": 3,
    }
    assert len(receipt.thread_ids) == 4
    assert attrs(recorded.one("registry.erase")) == {
        **common("registry.erase", "RedisThreadRegistry.erase"),
        "key_prefix": "era",
        "registry.label_filters": 1,
        "registry.dry_run": False,
        "threads.deleted": 4,
        "threads.written_during": 0,
        "keys.deleted": receipt.keys_deleted,
        "messages.deleted": 15,
        "erase.complete": True,
    }
    assert receipt.keys_deleted >= 8


# -- what is never recorded -----------------------------------------------------------------


def everything_recorded(recorded: Recorded) -> list[str]:
    """Every string this package handed the SDK: span names, attribute values, events, statuses, metric points."""
    seen: list[str] = []
    for span in recorded.spans():
        seen.append(span.name)
        seen.extend(f"{key}={value}" for key, value in (span.attributes or {}).items())
        for event in span.events:
            seen.append(event.name)
            seen.extend(f"{key}={value}" for key, value in (event.attributes or {}).items())
        seen.append(str(span.status.description))
    for point in recorded.durations():
        seen.extend(f"{key}={value}" for key, value in (point.attributes or {}).items())
    return seen


async def test_no_message_text_label_value_password_or_thread_id_is_recorded(
    redis_url: str, raw: redis.asyncio.Redis, recorded: Recorded
) -> None:
    await raw.execute_command("ACL", "SETUSER", "telemetry", "on", f">{PASSWORD}", "~*", "+@all")
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    url = f"redis://telemetry:{PASSWORD}@127.0.0.1:{port}/0"
    thread_id = "user-4711@example.com"
    policy = SummaryCompaction(Summarizer(), trigger_messages=4, keep_last_messages=2, background=False)
    try:
        secret_chat = [message("user", SECRET_TEXT), message("assistant", f"noted: {SECRET_TEXT}")] * 3
        async with RedisChatMessageStore(
            url, thread_id=thread_id, labels={"email": SECRET_LABEL}, compaction=policy, max_messages=20
        ) as store:
            await store.add_messages(secret_chat)
            await store.add_new_messages(secret_chat)
            await store.list_messages()
            await store.transcript()
            await store.compact(force=True)
        async with RedisThreadRegistry(url) as registry:
            await registry.list_threads(labels={"email": SECRET_LABEL})
            record = await registry.export_thread(thread_id)
            await registry.import_thread(record, replace=True)
            await registry.stats()
            await registry.purge(older_than=timedelta(days=1))
            await registry.delete([thread_id])

        # Failures whose messages hold data: a summarizer quoting the conversation, a corrupt entry
        # (named by its key, which holds the thread id), credentials Redis rejects.
        failing = SummaryCompaction(
            Summarizer(fail=RuntimeError(f"model refused: {SECRET_TEXT}")),
            trigger_messages=4,
            keep_last_messages=2,
            background=False,
        )
        async with RedisChatMessageStore(url, thread_id=thread_id, compaction=failing) as store:
            await store.add_messages(secret_chat)
            with pytest.raises(RuntimeError, match="model refused"):
                await store.compact(force=True)
            await raw.rpush(store.redis_key, f"not json: {SECRET_TEXT}")
            with pytest.raises(CorruptMessageError, match="user-4711"):
                await store.list_messages()
        bad_url = f"redis://telemetry:wrong-{PASSWORD}@127.0.0.1:{port}/0"
        async with RedisChatMessageStore(bad_url, thread_id=thread_id) as store:
            with pytest.raises(RedisStoreError, match="rejected the credentials"):
                await store.add_messages(secret_chat)
    finally:
        await raw.execute_command("ACL", "DELUSER", "telemetry")

    seen = everything_recorded(recorded)
    assert len(recorded.spans()) >= 15
    for secret in (SECRET_TEXT, "4111", SECRET_LABEL, PASSWORD, thread_id, "user-4711", "telemetry:"):
        leaks = [value for value in seen if secret in value]
        assert not leaks, f"{secret!r} recorded: {leaks}"


async def test_a_failure_records_the_exception_type_never_its_message(
    redis_url: str, raw: redis.asyncio.Redis, recorded: Recorded
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="broken") as store:
        await raw.rpush(store.redis_key, "not json")
        with pytest.raises(CorruptMessageError):
            await store.list_messages()
    span = recorded.one("load")
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description is None
    assert attrs(span)["error.type"] == "agent_framework_redis_store.CorruptMessageError"
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("exception", {"exception.type": "agent_framework_redis_store.CorruptMessageError"})
    ]
    (point,) = recorded.durations()
    assert dict(point.attributes or {}) == {
        "db.system.name": "redis",
        "db.operation.name": "load",
        "error.type": "agent_framework_redis_store.CorruptMessageError",
    }


# -- workflow checkpoints ---------------------------------------------------------------------


async def test_checkpoint_save_load_and_get_latest_are_traced_without_names_or_contents(
    redis_url: str, raw: redis.asyncio.Redis, recorded: Recorded
) -> None:
    from agent_framework_redis_store import AESGCMEncryption, CheckpointNotFoundError, Keyspace, RedisCheckpointStorage

    from .test_checkpoints import CURRENT, make_checkpoint

    encryption = AESGCMEncryption({"k1": b"1" * 32}, current="k1")
    secret_workflow = "refund-for-user-4711"
    saved = [make_checkpoint(secret_workflow, second=s, state={"card": SECRET_TEXT}) for s in range(3)]
    async with RedisCheckpointStorage(redis_url, key_prefix="wf", keep_last=2, encryption=encryption) as storage:
        for checkpoint in saved:
            await (storage.save(checkpoint) if CURRENT else storage.save_checkpoint(checkpoint))
        await storage.load(saved[2].checkpoint_id)
        await storage.load_checkpoint(saved[1].checkpoint_id)
        await storage.get_latest(workflow_name=secret_workflow)
        assert await storage.get_latest(workflow_name="none") is None
        with pytest.raises(CheckpointNotFoundError):
            await storage.load(saved[0].checkpoint_id)  # trimmed by keep_last
    bodies = Keyspace("wf").workflow(secret_workflow).checkpoints
    stored = {c.checkpoint_id: len(await raw.hget(bodies, c.checkpoint_id) or b"") for c in saved[1:]}

    saves = recorded.spans("checkpoint.save")
    assert [attrs(span)["checkpoints.trimmed"] for span in saves] == [0, 0, 1]
    method = "save" if CURRENT else "save_checkpoint"
    assert attrs(saves[2]) == {
        **common("checkpoint.save", f"RedisCheckpointStorage.{method}"),
        "key_prefix": "wf",
        "encrypted": True,
        "bytes.sent": stored[saved[2].checkpoint_id],  # the sealed body, as stored
        "checkpoints.trimmed": 1,
    }
    assert all(span.kind == SpanKind.INTERNAL for span in saves)
    found, found_legacy, missing = recorded.spans("checkpoint.load")
    assert attrs(found) == {
        **common("checkpoint.load", "RedisCheckpointStorage.load"),
        "key_prefix": "wf",
        "encrypted": True,
        "bytes.received": stored[saved[2].checkpoint_id],
    }
    assert attrs(found_legacy)["code.function.name"] == NS + "RedisCheckpointStorage.load_checkpoint"
    assert attrs(found_legacy)["bytes.received"] == stored[saved[1].checkpoint_id]
    assert missing.status.status_code == StatusCode.ERROR
    assert attrs(missing)["error.type"] == "agent_framework_redis_store.CheckpointNotFoundError"
    latest, none = recorded.spans("checkpoint.get_latest")
    assert attrs(latest) == {
        **common("checkpoint.get_latest", "RedisCheckpointStorage.get_latest"),
        "key_prefix": "wf",
        "encrypted": True,
        "bytes.received": stored[saved[2].checkpoint_id],
    }
    assert attrs(none) == {**common("checkpoint.get_latest", "RedisCheckpointStorage.get_latest"), "key_prefix": "wf"}
    operations = sorted({str(dict(p.attributes or {})["db.operation.name"]) for p in recorded.durations()})
    assert operations == ["checkpoint.get_latest", "checkpoint.load", "checkpoint.save"]
    seen = everything_recorded(recorded)
    for secret in (SECRET_TEXT, "4711", saved[2].checkpoint_id):
        assert not [value for value in seen if secret in value], secret


# -- thread ids: omitted unless asked for -----------------------------------------------------


async def test_thread_ids_are_omitted_hashed_or_plain(redis_url: str, recorded: Recorded) -> None:
    providers = {"tracer_provider": recorded.tracer_provider, "meter_provider": recorded.meter_provider}
    key = b"0123456789abcdef-telemetry"
    digest = hmac.new(key, b"user-42", hashlib.sha256).hexdigest()[:32]
    async with (
        RedisChatMessageStore(redis_url, thread_id="user-42") as store,
        RedisThreadRegistry(redis_client=store.redis_client) as registry,
    ):
        await store.add_messages([message("user", "hi")])
        configure_telemetry(thread_ids="hmac", thread_id_key=key, **providers)
        await store.add_messages([message("user", "hi")])
        await registry.export_thread("user-42")
        configure_telemetry(thread_ids="plain", **providers)
        await store.list_messages()
    omitted, hashed = recorded.spans("save")
    assert not {"thread_id", "thread_id.hmac"} & attrs(omitted).keys()
    assert attrs(hashed)["thread_id.hmac"] == attrs(recorded.one("registry.export"))["thread_id.hmac"] == digest
    assert attrs(recorded.one("load"))["thread_id"] == "user-42"
    for point in recorded.durations():  # never in a metric: one series per thread would be unbounded
        assert set(point.attributes or {}) == {"db.system.name", "db.operation.name"}


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"thread_ids": "hash"}, "'omit', 'hmac' or 'plain'"),
        ({"thread_ids": "hmac"}, "at least 16 bytes"),
        ({"thread_ids": "hmac", "thread_id_key": b"short"}, "at least 16 bytes"),
        ({"thread_ids": "plain", "thread_id_key": b"0123456789abcdef"}, "only with thread_ids='hmac'"),
    ],
)
def test_bad_telemetry_settings_are_named(options: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        configure_telemetry(**options)
    with pytest.raises(TypeError, match="enabled must be a bool"):
        configure_telemetry(enabled="no")  # type: ignore[arg-type]


# -- metrics ----------------------------------------------------------------------------------


async def test_one_duration_series_per_operation(redis_url: str, recorded: Recorded) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="m") as store:
        for _ in range(3):
            await store.add_messages([message("user", "hi")])
        await store.list_messages()
    points = {dict(p.attributes or {})["db.operation.name"]: p for p in recorded.durations()}
    assert {op: p.count for op, p in points.items()} == {"save": 3, "load": 1}
    save = points["save"]
    assert list(save.explicit_bounds[:3]) == [0.0001, 0.00025, 0.0005]  # seconds, fine enough for one round trip
    assert 0 < save.sum < 3 * 5


# -- no SDK, disabled, sampled out ------------------------------------------------------------


async def test_without_an_sdk_nothing_is_made(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast check reads OpenTelemetry's global provider slots (not the slower public getters).
    assert telemetry._global_sdk.__name__ == "configured"
    assert not telemetry._recording()
    seen: list[object] = []

    def spy() -> Any:
        seen.append(telemetry.current_operation())
        return seen[-1]

    monkeypatch.setattr(thread_module, "current_operation", spy)
    async with RedisChatMessageStore(redis_url, thread_id="n") as store:
        await store.add_messages([message("user", "hi")])
        assert [m.text for m in await store.list_messages()] == ["hi"]
    assert len(seen) >= 3
    assert set(seen) == {None}


async def test_disabled_records_nothing_even_with_an_sdk(redis_url: str) -> None:
    recorded = Recorded()
    configure_telemetry(enabled=False, tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider)
    try:
        assert not telemetry._recording()
        async with RedisChatMessageStore(redis_url, thread_id="off") as store:
            await store.add_messages([message("user", "hi")])
            await store.list_messages()
    finally:
        configure_telemetry()
    assert recorded.spans() == []
    assert recorded.durations() == []


async def test_a_sampled_out_trace_still_measures_durations(redis_url: str) -> None:
    recorded = Recorded(sampler=ALWAYS_OFF)
    configure_telemetry(tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider)
    try:
        async with RedisChatMessageStore(redis_url, thread_id="sampled") as store:
            await store.add_messages([message("user", "hi")])
    finally:
        configure_telemetry()
    assert recorded.spans() == []
    assert [p.count for p in recorded.durations()] == [1]


_GLOBAL_SDK = """
import asyncio, json, sys
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from agent_framework_redis_store import RedisChatMessageStore
from agent_framework_redis_store._core import telemetry
from agent_framework_redis_store._core.codec import message_from_dict

async def turn(store):
    await store.add_messages([message_from_dict({"role": "user", "contents": [{"type": "text", "text": "hi"}]})])

async def main(url):
    async with RedisChatMessageStore(url, thread_id="global") as store:
        await turn(store)  # before the SDK is set up: nothing
        before = telemetry._recording()
        exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
        if sys.argv[2] == "traces":
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        await turn(store)
    points = [
        p.count for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
        for m in sm.metrics for p in m.data.data_points
    ]
    print(json.dumps({"before": before, "spans": [s.name for s in exporter.get_finished_spans()], "points": points}))

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize(("signals", "spans"), [("traces", ["agent_framework_redis_store.save"]), ("metrics", [])])
def test_the_global_providers_are_used_once_the_application_sets_them(
    redis_url: str, signals: str, spans: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _GLOBAL_SDK, redis_url, signals],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"before": False, "spans": spans, "points": [1]}
