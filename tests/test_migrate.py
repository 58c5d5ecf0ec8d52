"""``migrate_agent_framework_redis`` / ``migrate_langchain`` and ``redis-chat-store migrate``.

Sources are written by the real stores where they install beside the tests: Microsoft's
legacy ``RedisChatMessageStore`` (agent-framework-redis 1.0.0b251223, legacy environment)
and LangChain's community ``RedisChatMessageHistory`` (both environments). The 1.x
``RedisHistoryProvider`` (1.0.0b261022) needs redis<7.2.1, so its keys and entries were
recorded from the real provider (``tests/upstream/record.py``) and are replayed byte for
byte; the legacy store's recording is replayed the same way in the current environment.
What was migrated is read back through this package's store (legacy) and provider (1.x).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from agent_framework_redis_store import (
    GENERATION,
    ConnectionSettings,
    MigrationProgress,
    MigrationReport,
    RedisChatMessageStore,
    RedisThreadRegistry,
    RedisUnavailableError,
    migrate_agent_framework_redis,
    migrate_langchain,
)
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store._ops.migrate_sources import AgentFrameworkRedisLayout, storage_key_segment
from agent_framework_redis_store.testing import EmbeddedRedis

from .upstream import record

ROOT = Path(__file__).resolve().parent.parent
TARGET = "ours"
LEGACY = record.LEGACY_VERSION
CURRENT = record.CURRENT_VERSION


@cache
def fixture(version: str) -> dict[str, Any]:
    """What agent-framework-redis ``version`` wrote, recorded by ``tests/upstream/record.py``."""
    return json.loads(record.fixture_path(version).read_text(encoding="utf-8"))


async def replay(client: redis.asyncio.Redis, version: str, keys: list[str] | None = None) -> None:
    """Write the recorded keys and entries back, byte for byte."""
    recorded = fixture(version)["keys"]
    for key in keys if keys is not None else recorded:
        await client.rpush(key, *recorded[key])


def expected(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the installed framework reads them (identity for its own generation's to_dict)."""
    return [message_from_dict(m).to_dict() for m in messages]


def recorded_thread(version: str, key: str) -> dict[str, Any]:
    return next(t for t in fixture(version)["threads"] if t["key"] == key)


async def read_back(url: str, thread_id: str, prefix: str = TARGET) -> list[dict[str, Any]]:
    """A thread's stored messages as the application reads them: the store in the legacy generation, the 1.x
    provider in the current. (The transcript: the recorded threads end in unanswered tool calls, which the
    model's view, ``list_messages``, leaves out.)"""
    async with RedisChatMessageStore(url, thread_id=thread_id, key_prefix=prefix) as store:
        through_store = [m.to_dict() for m in await store.transcript()]
    if GENERATION == "legacy":
        return through_store
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(url, key_prefix=prefix) as provider:
        through_provider = [m.to_dict() for m in await provider.transcript(thread_id)]
    assert through_provider == through_store
    return through_provider


def as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def dump(client: redis.asyncio.Redis, pattern: str = "*") -> dict[bytes, Any]:
    """Every key matching ``pattern`` with its type, content and whether it expires: to compare states."""
    state: dict[bytes, Any] = {}
    for key in sorted(await client.keys(pattern)):
        kind = as_bytes(await client.type(key)).decode()
        if kind == "list":
            value: Any = await client.lrange(key, 0, -1)
        elif kind == "hash":
            value = sorted((await client.hgetall(key)).items())
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        else:
            value = await client.get(key)
        state[as_bytes(key)] = (kind, value, await client.ttl(key) > 0)
    return state


@pytest.fixture
async def registry(redis_url: str) -> AsyncIterator[RedisThreadRegistry]:
    async with RedisThreadRegistry(redis_url, key_prefix=TARGET) as target:
        yield target


def summary(report: MigrationReport) -> dict[str, Any]:
    return {k: v for k, v in report.to_dict().items() if k != "threads"}


def outcomes(report: MigrationReport) -> dict[str | None, str]:
    return {t.thread_id: t.outcome for t in report.threads}


# -- Microsoft's legacy RedisChatMessageStore ---------------------------------------------------


@pytest.mark.legacy
async def test_threads_of_the_real_legacy_store_read_back_identical(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    written = await record._record_legacy_store(redis_url)
    # The recording the current generation replays is exactly what this release writes.
    assert {k.decode(): v for k, (_, v, _) in (await dump(raw)).items()} == {
        k: [e.encode() for e in v] for k, v in fixture(LEGACY)["keys"].items()
    }
    source = {k: v for k, (_, v, _) in (await dump(raw)).items()}

    report = await migrate_agent_framework_redis(raw, registry)

    chat_messages = [t for t in written if t["key_prefix"] == "chat_messages"]
    assert summary(report) | {"threads_found": 3, "migrated": 3, "messages": 15, "complete": True} == summary(report)
    for thread in chat_messages:
        # What the upstream store itself read back, in order, through this package's store.
        assert await read_back(redis_url, thread["thread_id"]) == thread["read"]
    assert (await registry.info("thread-1")).labels == {}
    # The source is left as it was.
    assert {k: v for k, (_, v, _) in (await dump(raw, "chat_messages:*")).items()} == {
        k: v for k, v in source.items() if k.startswith(b"chat_messages:")
    }

    support = await migrate_agent_framework_redis(raw, registry, source_key_prefix="support")
    assert outcomes(support) == {"t-9": "migrated"}
    assert await read_back(redis_url, "t-9") == next(t for t in written if t["thread_id"] == "t-9")["read"]


@pytest.mark.current
async def test_the_legacy_store_s_threads_read_back_through_the_1x_provider(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    await replay(raw, LEGACY)
    report = await migrate_agent_framework_redis(raw, registry)
    assert report.complete
    assert report.migrated == 3
    for thread in fixture(LEGACY)["threads"][:3]:
        messages = await read_back(redis_url, thread["thread_id"])
        assert messages == expected(thread["read"])
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
        assert messages[1]["contents"][1]["call_id"] == "call_2"


# -- Microsoft's 1.x RedisHistoryProvider (recorded) ----------------------------------------------


async def test_history_provider_threads_migrate_with_scopes_as_labels(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    await replay(raw, CURRENT)
    report = await migrate_agent_framework_redis(raw, registry)

    assert outcomes(report) == {
        None: "failed",  # the session id is stored only as its SHA-256
        "sess-1": "conflict",  # in applications myapp and other
        "Sess 1": "migrated",
        "会话": "migrated",
        "legacy-sess": "migrated",  # key_format="legacy"
        "default": "migrated",  # key_format="legacy" with no session id
    }
    conflict = next(t for t in report.threads if t.outcome == "conflict")
    assert conflict.source_keys == (
        "chat_messages|v2|~none|myapp|~none|redis_memory|sess-1",
        "chat_messages|v2|~none|other|~none|redis_memory|sess-1",
    )
    assert await registry.missing(["sess-1"]) == ["sess-1"]
    failed = next(t for t in report.threads if t.outcome == "failed")
    assert "SHA-256" in failed.detail
    assert not report.complete
    assert report.messages == 20

    for key, thread_id in [
        (
            "chat_messages|v2|~redis-tenant-inxw45dponxq|~redis-application-ifyha|planner|memory|~redis-session-knsxg4zage",
            "Sess 1",
        ),
        ("chat_messages|v2|~none|myapp|~none|redis_memory|~redis-session-4s6jv2fptu", "会话"),
        ("chat_messages:legacy-sess", "legacy-sess"),
        ("chat_messages:default", "default"),
    ]:
        # What the real provider's get_messages returned, in order.
        assert await read_back(redis_url, thread_id) == expected(recorded_thread(CURRENT, key)["read"])
    assert (await registry.info("Sess 1")).labels == {"tenant": "Contoso", "application": "App", "agent": "planner"}
    assert (await registry.info("会话")).labels == {"application": "myapp"}
    assert (await registry.info("legacy-sess")).labels == {}


async def test_a_thread_id_template_names_conflicting_scopes_apart(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    await replay(raw, CURRENT)
    report = await migrate_agent_framework_redis(
        raw, registry, thread_id_template="{tenant}/{application}/{agent}:{session_id}", labels={"origin": "ms"}
    )
    assert {t: o for t, o in outcomes(report).items() if o != "failed"} == {
        "/myapp/:sess-1": "migrated",
        "/other/:sess-1": "migrated",
        "Contoso/App/planner:Sess 1": "migrated",
        "/myapp/:会话": "migrated",
        # The template names scoped keys only: legacy-format keys keep their id.
        "legacy-sess": "migrated",
        "default": "migrated",
    }
    sess = "chat_messages|v2|~none|other|~none|redis_memory|sess-1"
    assert await read_back(redis_url, "/other/:sess-1") == expected(recorded_thread(CURRENT, sess)["read"])
    assert (await registry.info("/other/:sess-1")).labels == {"application": "other", "origin": "ms"}


async def test_source_id_and_an_encoded_key_prefix(raw: redis.asyncio.Redis, registry: RedisThreadRegistry) -> None:
    await replay(raw, CURRENT)
    only_memory = await migrate_agent_framework_redis(raw, registry, source_id="memory", dry_run=True)
    # Keys of another source_id are not this run's; legacy-format keys carry no source_id.
    assert outcomes(only_memory) == {"Sess 1": "migrated", "legacy-sess": "migrated", "default": "migrated"}
    assert only_memory.ignored_keys == 4

    # key_prefix="Support Chats" is not literal-safe: the provider base32-encodes it.
    encoded = await migrate_agent_framework_redis(raw, registry, source_key_prefix="Support Chats")
    assert outcomes(encoded) == {"s-1": "migrated"}
    assert (await registry.info("s-1")).labels == {"application": "myapp"}


@pytest.mark.current
def test_the_recorded_provider_keys_and_entries_are_what_its_code_writes() -> None:
    """The recording matches a re-derivation from upstream's code, on core's own key-segment function."""
    from agent_framework import Message
    from agent_framework._filesystem import _storage_key_segment  # pyright: ignore[reportPrivateUsage]

    def provider_key(spec: dict[str, Any]) -> str:
        # agent_framework_redis/_history_provider.py (1.0.0b261022), RedisHistoryProvider._redis_key.
        session_id = spec["session_id"]
        if spec["key_format"] == "legacy":
            return f"{spec['key_prefix']}:{session_id or 'default'}"

        def optional(value: str | None, mark: str) -> str:
            return "~none" if value is None else _storage_key_segment(value, encoded_prefix=mark)

        return "|".join(
            (
                _storage_key_segment(spec["key_prefix"], encoded_prefix="~redis-key-prefix-"),
                "v2",
                optional(spec.get("tenant_id"), "~redis-tenant-"),
                _storage_key_segment(spec["application_id"], encoded_prefix="~redis-application-"),
                optional(spec.get("agent_id"), "~redis-agent-"),
                _storage_key_segment(spec["source_id"], encoded_prefix="~redis-source-"),
                _storage_key_segment(session_id, encoded_prefix="~redis-session-"),
            )
        )

    for thread in fixture(CURRENT)["threads"]:
        assert provider_key(thread) == thread["key"]
        # save_messages: RPUSH json.dumps(message.to_dict()) per message.
        entries = [json.dumps(m.to_dict()) for m in record._current_conversation(str(thread["session_id"]))]
        assert fixture(CURRENT)["keys"][thread["key"]] == entries
        assert [Message.from_dict(json.loads(e)).to_dict() for e in entries] == thread["read"]


def bench_python() -> str | None:
    """A Python with the real 1.x provider: ``AFRS_BENCH_PYTHON``, else this checkout's ``.venv-bench``."""
    configured = os.environ.get("AFRS_BENCH_PYTHON")
    local = ROOT / ".venv-bench" / "bin" / "python"
    return configured or (str(local) if local.exists() else None)


@pytest.mark.current
def test_the_recording_is_what_the_real_1x_provider_writes_today() -> None:
    python = bench_python()
    if python is None:
        pytest.skip(
            "no environment with the 1.x provider: create one with the bench group (see tests/upstream/record.py)"
        )
    installed = subprocess.run(
        [python, "-c", "from importlib.metadata import version; print(version('agent-framework-redis'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if installed.stdout.strip() != CURRENT:
        pytest.skip(f"{python} has agent-framework-redis {installed.stdout.strip() or '(none)'}, not {CURRENT}")
    done = subprocess.run(
        [python, "-m", "tests.upstream.record", "--print"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    live = json.loads(done.stdout)
    assert (live["threads"], live["keys"]) == (fixture(CURRENT)["threads"], fixture(CURRENT)["keys"])


@pytest.mark.current
@pytest.mark.parametrize(
    "value",
    ["sess-1", "", "Sess 1", "CON", "con", "com1.txt", "COM¹", ".hidden", "trailing.", "trailing ", "a\x00b",
     "under_score", "tab\tin", "会话", "é" * 40, "E" * 111, "E" * 112, "x" * 500, "~none", "a|b", "a:b"],
)  # fmt: skip
def test_key_segments_match_the_framework_s(value: str) -> None:
    from agent_framework._filesystem import _storage_key_segment  # pyright: ignore[reportPrivateUsage]

    assert storage_key_segment(value, "~redis-session-") == _storage_key_segment(
        value, encoded_prefix="~redis-session-"
    )


@pytest.mark.current
@pytest.mark.parametrize("session_id", ["Sess 1", "会话 ✓", "CON", "a|b:c{d}", "x" * 101, "Ü" * 50, "~none"])
def test_every_scoped_session_id_the_provider_encodes_reads_back(session_id: str) -> None:
    from agent_framework._filesystem import _storage_key_segment  # pyright: ignore[reportPrivateUsage]

    key = "|".join(
        (
            "chat_messages",
            "v2",
            "~none",
            "app",
            "~none",
            "redis_memory",
            _storage_key_segment(session_id, encoded_prefix="~redis-session-"),
        )
    )
    thread = AgentFrameworkRedisLayout("chat_messages").thread(key)
    assert thread is not None
    assert thread.thread_id == session_id
    assert thread.problem is None


# -- LangChain's RedisChatMessageHistory ----------------------------------------------------------


def langchain_history(url: str, session_id: str, *, key_prefix: str = "message_store:", ttl: int | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "langchain-community is being sunset"
        from langchain_community.chat_message_histories import RedisChatMessageHistory

    return RedisChatMessageHistory(session_id, url=url, key_prefix=key_prefix, ttl=ttl)


def langchain_conversation() -> list[Any]:
    from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage

    return [
        SystemMessage("Be brief."),
        HumanMessage("What is the weather in Paris?", id="h1", name="alice"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"},
                {"name": "get_time", "args": {"tz": "CET"}, "id": "call_2"},
            ],
            response_metadata={"model_name": "gpt-x", "finish_reason": "tool_calls"},
            usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        ),
        ToolMessage("sunny", tool_call_id="call_1", name="get_weather"),
        ToolMessage("12:00", tool_call_id="call_2", name="get_time"),
        AIMessage("Sunny, and it is noon.", id="a2"),
        HumanMessage(
            content=[
                {"type": "text", "text": "And this one?"},
                {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
            ]
        ),
        ChatMessage(content="A cat.", role="critic"),
    ]


def shape(message: dict[str, Any]) -> tuple[Any, ...]:
    """What a model is shown of a message: role, then each content's kind and payload."""
    role = message["role"]["value"] if isinstance(message["role"], dict) else message["role"]
    contents = []
    for c in message["contents"]:
        if c["type"] == "text":
            contents.append(("text", c["text"]))
        elif c["type"] == "function_call":
            contents.append(("call", c["call_id"], c["name"], c["arguments"]))
        elif c["type"] == "function_result":
            contents.append(("result", c["call_id"], c["result"]))
        else:
            contents.append((c["type"], c.get("uri"), c.get("media_type")))
    return (role, message.get("message_id"), *contents)


async def test_langchain_histories_migrate_oldest_first_with_their_tool_calls(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    history = langchain_history(redis_url, "user-42")
    history.add_messages(langchain_conversation())
    langchain_history(redis_url, "other").add_user_message("hello")
    # LPUSH: the newest message is first in Redis.
    newest = await raw.lindex("message_store:user-42", 0)
    assert newest is not None
    assert json.loads(newest)["data"]["role"] == "critic"

    report = await migrate_langchain(raw, registry)
    assert summary(report) | {"threads_found": 2, "migrated": 2, "messages": 9, "complete": True} == summary(report)

    messages = await read_back(redis_url, "user-42")
    assert [shape(m) for m in messages] == [
        ("system", None, ("text", "Be brief.")),
        ("user", "h1", ("text", "What is the weather in Paris?")),
        (
            "assistant",
            None,
            ("call", "call_1", "get_weather", {"city": "Paris"}),
            ("call", "call_2", "get_time", {"tz": "CET"}),
        ),
        ("tool", None, ("result", "call_1", "sunny")),
        ("tool", None, ("result", "call_2", "12:00")),
        ("assistant", "a2", ("text", "Sunny, and it is noon.")),
        ("user", None, ("text", "And this one?"), ("uri", "https://x.test/cat.png", "image/png")),
        ("critic", None, ("text", "A cat.")),
    ]
    assert messages[1]["author_name"] == "alice"
    # Kept, where the framework has no field for it.
    assert messages[2]["additional_properties"]["langchain"] == {
        "response_metadata": {"model_name": "gpt-x", "finish_reason": "tool_calls"},
        "usage_metadata": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    }
    assert [shape(m) for m in await read_back(redis_url, "other")] == [("user", None, ("text", "hello"))]
    # LangChain still reads its history, unchanged.
    assert next(m.content for m in history.messages) == "Be brief."


async def test_a_langchain_ttl_carries_over(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    langchain_history(redis_url, "expiring", ttl=3600).add_user_message("soon gone")
    langchain_history(redis_url, "kept").add_user_message("stays")
    await migrate_langchain(raw, registry)
    expiring = await registry.info("expiring")
    assert expiring.ttl_remaining is not None
    assert 3000 < expiring.ttl_remaining <= 3600
    assert (await registry.info("kept")).ttl_remaining is None


async def test_function_call_ids_stay_the_same_when_the_history_grows(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    from langchain_core.messages import AIMessage, FunctionMessage, HumanMessage

    history = langchain_history(redis_url, "old-openai")
    history.add_messages(
        [
            HumanMessage("2 + 2?"),
            AIMessage("", additional_kwargs={"function_call": {"name": "calc", "arguments": '{"q": "2 + 2"}'}}),
            FunctionMessage(content="4", name="calc"),
        ]
    )
    await migrate_langchain(raw, registry)
    first = await read_back(redis_url, "old-openai")
    assert [(c["type"], c["call_id"]) for m in first[1:] for c in m["contents"]] == [
        ("function_call", "langchain-function-call-1"),
        ("function_result", "langchain-function-call-1"),
    ]
    # The application goes on in LangChain: LPUSH moves every older entry's LINDEX, not its call id.
    history.add_messages([AIMessage("It is 4.")])
    again = await migrate_langchain(raw, registry)
    assert outcomes(again) == {"old-openai": "differs"}
    assert "the target thread holds 3 message(s), the source 4; they differ from index 3" in again.threads[0].detail
    await migrate_langchain(raw, registry, replace=True)
    assert (await read_back(redis_url, "old-openai"))[:3] == first


async def test_unreadable_entries_fail_their_thread_only(
    raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    good = json.dumps({"type": "human", "data": {"type": "human", "content": "fine"}})
    await raw.rpush("message_store:good", good)
    await raw.rpush("message_store:broken", good, "not json")  # index 1 is the oldest message
    await raw.rpush("message_store:removal", json.dumps({"type": "remove", "data": {"type": "remove", "id": "x"}}))
    await raw.set("message_store:a-string", "not a history")
    await raw.rpush("chat_messages:bad", json.dumps({"type": "chat_message", "role": 7}))

    report = await migrate_langchain(raw, registry)
    assert outcomes(report) == {"good": "migrated", "broken": "failed", "removal": "failed"}
    details = {t.thread_id: t.detail for t in report.threads}
    assert details["broken"].startswith("'message_store:broken' entry 1: not JSON")
    assert details["removal"].startswith("'message_store:removal' entry 0: LangChain message type 'remove' has no")

    microsoft = await migrate_agent_framework_redis(raw, registry)
    assert outcomes(microsoft) == {"bad": "failed"}
    assert "entry 0: not a message this framework reads" in microsoft.threads[0].detail
    assert await registry.missing(["bad", "broken", "removal"]) == ["bad", "broken", "removal"]


# -- runs again: idempotent, resumable, never silently overwriting ---------------------------------


async def many_legacy_threads(client: redis.asyncio.Redis, count: int) -> dict[str, list[bytes]]:
    """``count`` threads in the legacy store's layout, from its recorded entries."""
    entries = fixture(LEGACY)["keys"]["chat_messages:thread-1"]
    threads: dict[str, list[bytes]] = {}
    for n in range(count):
        own = [*entries[: 1 + n % 5], json.dumps({**json.loads(entries[0]), "message_id": f"m{n}"})]
        await client.rpush(f"chat_messages:t{n:02}", *own)
        threads[f"t{n:02}"] = [e.encode() for e in own]
    return threads


async def assert_copied(url: str, source: dict[str, list[bytes]]) -> None:
    async with RedisThreadRegistry(url, key_prefix=TARGET) as target:
        assert sorted([t.thread_id async for t in target.iter_threads()]) == sorted(source)
    for thread_id, entries in source.items():
        assert await read_back(url, thread_id) == expected([json.loads(e) for e in entries])


async def test_a_second_run_adds_nothing(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    source = await many_legacy_threads(raw, 6)
    first = await migrate_agent_framework_redis(raw, registry)
    assert first.migrated == 6
    before = await dump(raw, f"{TARGET}:*")

    again = await migrate_agent_framework_redis(raw, registry)
    assert summary(again) | {"migrated": 0, "skipped": 6, "messages": 0, "complete": True} == summary(again)
    assert await dump(raw, f"{TARGET}:*") == before  # not a byte written, timestamps included
    await assert_copied(redis_url, source)


async def test_a_run_interrupted_after_some_threads_completes_exactly_when_run_again(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    source = await many_legacy_threads(raw, 10)

    class Interrupted(Exception):
        pass

    def stop_after_four(progress: MigrationProgress) -> None:
        if progress.done == 4:
            raise Interrupted  # the run stops between two threads, as after Ctrl-C

    with pytest.raises(Interrupted):
        await migrate_agent_framework_redis(raw, registry, on_progress=stop_after_four, concurrency=1)
    assert await registry.count() == 4

    seen: list[MigrationProgress] = []
    resumed = await migrate_agent_framework_redis(raw, registry, on_progress=seen.append)
    assert (resumed.migrated, resumed.skipped, resumed.complete) == (6, 4, True)
    assert [p.done for p in seen] == list(range(1, 11))
    assert {p.total for p in seen} == {10}
    await assert_copied(redis_url, source)


async def test_a_source_server_killed_mid_run_then_restarted_resumes_and_deletes_exactly(
    redis_url: str, own_server: EmbeddedRedis, registry: RedisThreadRegistry
) -> None:
    source_client = ConnectionSettings(redis_url=own_server.url).create_client()
    assert isinstance(source_client, redis.asyncio.Redis)
    try:
        source = await many_legacy_threads(source_client, 8)

        def kill_after_three(progress: MigrationProgress) -> None:
            if progress.done == 3:
                own_server.kill()  # SIGKILL: the next read of the source fails

        with pytest.raises(RedisUnavailableError, match=r"\(the source\)"):
            await migrate_agent_framework_redis(
                source_client, registry, delete_source=True, on_progress=kill_after_three, concurrency=1
            )
        own_server.start()  # append-only file, fsync always: the deletes survived the kill
        assert sorted(await source_client.keys("*")) == [f"chat_messages:t{n:02}".encode() for n in range(3, 8)]
        assert await registry.count() == 3

        resumed = await migrate_agent_framework_redis(source_client, registry, delete_source=True)
        assert (resumed.migrated, resumed.skipped, resumed.sources_deleted) == (5, 0, 5)
        assert await source_client.keys("*") == []
        await assert_copied(redis_url, source)
    finally:
        await source_client.aclose()


async def test_a_target_server_killed_mid_run_then_restarted_resumes_exactly(
    raw: redis.asyncio.Redis, own_server: EmbeddedRedis
) -> None:
    source = await many_legacy_threads(raw, 8)
    async with RedisThreadRegistry(own_server.url, key_prefix=TARGET) as target:

        def kill_after_five(progress: MigrationProgress) -> None:
            if progress.done == 5:
                own_server.kill()

        with pytest.raises(
            RedisUnavailableError, match=f"Redis at redis://127.0.0.1:{own_server.port}/0 is unreachable"
        ):
            await migrate_agent_framework_redis(
                raw, target, delete_source=True, on_progress=kill_after_five, concurrency=1
            )
        own_server.start()
        assert len(await raw.keys("chat_messages:*")) == 3  # the sources of the five threads copied are gone
        resumed = await migrate_agent_framework_redis(raw, target, delete_source=True)
        assert (resumed.migrated, resumed.skipped, resumed.sources_deleted, resumed.complete) == (3, 0, 3, True)
        assert await raw.keys("chat_messages:*") == []
    await assert_copied(own_server.url, source)


async def test_a_source_written_to_while_it_is_copied_is_not_deleted(
    raw: redis.asyncio.Redis, own_server: EmbeddedRedis
) -> None:
    await many_legacy_threads(raw, 1)
    await raw.config_resetstat()
    async with RedisThreadRegistry(own_server.url, key_prefix=TARGET, socket_timeout=120) as target:
        own_server.pause()  # the copy waits for the target after reading the source
        try:
            run = asyncio.create_task(migrate_agent_framework_redis(raw, target, delete_source=True))
            deadline = asyncio.get_running_loop().time() + 60
            while not (await raw.info("commandstats")).get("cmdstat_lrange"):
                assert asyncio.get_running_loop().time() < deadline, "the migration never read the source"
                await asyncio.sleep(0.01)
            await raw.rpush("chat_messages:t00", json.dumps({"type": "message", "role": "user", "contents": []}))
        finally:
            own_server.resume()
        report = await run
        assert [(t.outcome, t.source_deleted) for t in report.threads] == [("migrated", False)]
        assert report.threads[0].detail == "the source changed after it was read: kept"
        assert await raw.llen("chat_messages:t00") == 3

        again = await migrate_agent_framework_redis(raw, target, delete_source=True)
        assert outcomes(again) == {"t00": "differs"}
        assert "the source 3" in again.threads[0].detail
        replaced = await migrate_agent_framework_redis(raw, target, delete_source=True, replace=True)
        assert [(t.outcome, t.source_deleted) for t in replaced.threads] == [("replaced", True)]
        assert await raw.exists("chat_messages:t00") == 0


async def test_a_thread_that_differs_is_reported_and_left_alone_unless_replace(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    from .scripted import user_message

    source = await many_legacy_threads(raw, 3)
    async with RedisChatMessageStore(redis_url, thread_id="t00", key_prefix=TARGET) as store:
        await store.add_messages([user_message("written by the application")])
    before = await dump(raw, f"{TARGET}:{{t00}}*")

    report = await migrate_agent_framework_redis(raw, registry)
    assert outcomes(report) == {"t00": "differs", "t01": "migrated", "t02": "migrated"}
    assert "the target thread holds 1 message(s), the source 2; they differ from index 0" in report.threads[0].detail
    assert not report.complete
    assert await dump(raw, f"{TARGET}:{{t00}}*") == before

    replaced = await migrate_agent_framework_redis(raw, registry, replace=True)
    assert outcomes(replaced) == {"t00": "replaced", "t01": "skipped", "t02": "skipped"}
    assert replaced.complete
    await assert_copied(redis_url, source)


async def test_a_copied_thread_the_application_continued_counts_as_copied(
    redis_url: str, raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    from .scripted import user_message

    await many_legacy_threads(raw, 2)
    await migrate_agent_framework_redis(raw, registry)
    async with RedisChatMessageStore(redis_url, thread_id="t01", key_prefix=TARGET) as store:
        await store.add_messages([user_message("a newer turn")])

    again = await migrate_agent_framework_redis(raw, registry, delete_source=True)
    assert outcomes(again) == {"t00": "skipped", "t01": "skipped"}
    assert again.threads[1].detail == "the target thread continues with 1 newer message(s)"
    assert again.sources_deleted == 2
    assert len(await read_back(redis_url, "t01")) == 4


async def test_dry_run_writes_and_deletes_nothing(raw: redis.asyncio.Redis, registry: RedisThreadRegistry) -> None:
    await many_legacy_threads(raw, 4)
    before = await dump(raw)
    report = await migrate_agent_framework_redis(raw, registry, dry_run=True, delete_source=True)
    assert summary(report) | {"dry_run": True, "migrated": 4, "sources_deleted": 4} == summary(report)
    assert await dump(raw) == before


async def test_this_store_s_own_keys_under_the_same_prefix_are_never_a_source(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    from .scripted import user_message

    async with RedisChatMessageStore(redis_url, thread_id="mine") as store:
        await store.add_messages([user_message("already ours")])
        await store.add_new_messages([user_message("a fingerprinted one")])
    await replay(raw, LEGACY, ["chat_messages:thread-1"])

    # Source and target: one server, one prefix (both default to chat_messages).
    async with RedisThreadRegistry(redis_url) as same:
        report = await migrate_agent_framework_redis(raw, same, delete_source=True)
        assert outcomes(report) == {"thread-1": "migrated"}
        assert report.ignored_keys == 3  # the thread's message, fingerprint and index lists
        assert sorted([t.thread_id async for t in same.iter_threads()]) == ["mine", "thread-1"]
        # Now the copy is this store's own thread too: nothing is left to read.
        # (the lists of both threads: messages and index each, and mine's fingerprints)
        assert await migrate_agent_framework_redis(raw, same) == MigrationReport("agent-framework-redis", False, (), 5)
    assert await read_back(redis_url, "thread-1", "chat_messages") == expected(
        recorded_thread(LEGACY, "chat_messages:thread-1")["read"]
    )


async def test_arguments_are_checked_before_anything_is_read(
    raw: redis.asyncio.Redis, registry: RedisThreadRegistry
) -> None:
    with pytest.raises(ValueError, match=r"must contain \{session_id\}"):
        await migrate_agent_framework_redis(raw, registry, thread_id_template="{application}")
    with pytest.raises(ValueError, match=r"names 'app'"):
        await migrate_agent_framework_redis(raw, registry, thread_id_template="{app}:{session_id}")
    with pytest.raises(TypeError, match=r"redis\.asyncio\.Redis"):
        await migrate_langchain(redis.Redis(), registry)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        await migrate_langchain(raw, registry, concurrency=0)
    with pytest.raises(ValueError, match="source_key_prefix"):
        await migrate_langchain(raw, registry, source_key_prefix="")


# -- the command --------------------------------------------------------------------------------


def cli(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "NO_COLOR", "FORCE_COLOR")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    if url is not None:
        env["REDIS_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "agent_framework_redis_store", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


@pytest.fixture
def password_server() -> Iterator[EmbeddedRedis]:
    """A server that needs a password: the command must never print it."""
    server = EmbeddedRedis(extra_args=["--requirepass", "s3cret-pw"]).start()
    try:
        yield server
    finally:
        server.stop()


def test_the_command_copies_across_servers_and_a_second_run_adds_nothing(
    redis_url: str, password_server: EmbeddedRedis
) -> None:
    target_url = password_server.url.replace("redis://", "redis://:s3cret-pw@")
    langchain_history(redis_url, "s1").add_messages(langchain_conversation())

    dry = cli(
        "migrate", "--key-prefix", TARGET, "langchain", "--source-url", redis_url, "--dry-run", "--json", url=target_url
    )
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["migrated"] == 1

    done = cli(
        "migrate", "langchain", "--source-url", redis_url, "--key-prefix", TARGET, "--label", "from=lc", url=target_url
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"copied 1 thread (8 messages) from langchain at {redis_url} to key prefix 'ours'; 0 already there; "
        "0 conflicts; 0 differing; 0 failed"
    )
    again = cli("migrate", "langchain", "--source-url", redis_url, "--key-prefix", TARGET, "--json", url=target_url)
    assert again.returncode == 0, again.stderr
    assert {k: v for k, v in json.loads(again.stdout).items() if k in ("migrated", "skipped")} == {
        "migrated": 0,
        "skipped": 1,
    }

    async def labels() -> dict[str, str]:
        async with RedisThreadRegistry(target_url, key_prefix=TARGET) as target:
            return (await target.info("s1")).labels

    assert asyncio.run(labels()) == {"from": "lc"}
    assert "s3cret-pw" not in dry.stdout + dry.stderr + done.stdout + done.stderr


def test_the_target_options_go_before_the_command_or_after_it(redis_url: str) -> None:
    langchain_history(redis_url, "s1").add_messages(langchain_conversation())
    unreachable = "redis://127.0.0.1:1/0"

    # No $REDIS_URL: the target (and so the source) from before the command.
    first = cli("--redis-url", redis_url, "--key-prefix", TARGET, "migrate", "langchain", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["migrated"] == 1
    # Given at every level, the nearest to the command wins: the same target, so nothing more to copy.
    again = cli(
        *("--redis-url", unreachable, "--key-prefix", "wrong", "migrate", "--key-prefix", "also-wrong", "langchain"),
        *("--redis-url", redis_url, "--key-prefix", TARGET, "--json"),
        url=unreachable,
    )
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["migrated"], json.loads(again.stdout)["skipped"]) == (0, 1)
    assert asyncio.run(read_back(redis_url, "s1"))

    for cluster in (["--cluster", "migrate", "langchain"], ["migrate", "langchain", "--cluster"]):
        refused = cli(*cluster, url=redis_url)
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            "error: the source stores run on a standalone Redis: pass --source-url with --cluster"
        ]


def test_delete_source_and_replace_ask_first(redis_url: str) -> None:
    from .test_cli_threads import cli_on_terminal

    langchain_history(redis_url, "s1").add_messages(langchain_conversation())
    source_keys = [b"message_store:s1"]

    async def keys() -> tuple[list[bytes], list[str]]:
        async with RedisThreadRegistry(redis_url, key_prefix=TARGET) as target:
            copied = sorted([t.thread_id async for t in target.iter_threads()])
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return sorted(as_bytes(key) for key in await client.keys("message_store:*")), copied
        finally:
            await client.aclose()

    command = ["migrate", "--key-prefix", TARGET, "langchain"]
    for flags, harm in (
        (["--delete-source"], "deletes source keys"),
        (["--replace"], "overwrites threads"),
        (["--replace", "--delete-source"], "overwrites threads and deletes source keys"),
    ):
        refused = cli(*command, *flags, url=redis_url)  # stdin and stderr are not a terminal
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            f"error: migrate langchain {' '.join(flags)} {harm}: pass --yes to confirm, there is no terminal to "
            "ask on (--dry-run shows what would change)"
        ]
    assert asyncio.run(keys()) == (source_keys, [])  # refused before anything was copied

    dry = cli(*command, "--delete-source", "--dry-run", "--json", url=redis_url)  # a dry run needs no --yes
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["sources_deleted"] == 1
    declined = cli_on_terminal(redis_url, *command, "--delete-source", answer="n")
    assert (declined.asked, declined.returncode) == (True, 1), declined.screen
    assert (
        f"Copy the threads of langchain at {redis_url} into key prefix {TARGET!r} at {redis_url}, deleting each "
        "source key once its copy reads back equal? [y/N]"
    ) in declined.screen
    assert asyncio.run(keys()) == (source_keys, [])

    accepted = cli_on_terminal(redis_url, *command, "--delete-source", answer="y")
    assert (accepted.asked, accepted.returncode) == (True, 0), accepted.screen
    assert "1 source key deleted" in accepted.stdout
    assert asyncio.run(keys()) == ([], ["s1"])

    langchain_history(redis_url, "s2").add_messages(langchain_conversation())
    done = cli(*command, "--delete-source", "--replace", "--yes", url=redis_url)
    assert done.returncode == 0, done.stderr
    assert asyncio.run(keys()) == ([], ["s1", "s2"])


def test_the_command_reports_conflicts_and_exits_1(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for key, entries in fixture(CURRENT)["keys"].items():
        client.rpush(key, *entries)
    client.close()

    done = cli("migrate", "agent-framework-redis", "--key-prefix", TARGET, url=redis_url)
    assert done.returncode == 1
    assert done.stdout.startswith("copied 4 threads (20 messages) from agent-framework-redis")
    assert "1 conflict; 0 differing; 1 failed" in done.stdout
    assert (
        "conflict: 'sess-1' from 'chat_messages|v2|~none|myapp|~none|redis_memory|sess-1', "
        "'chat_messages|v2|~none|other|~none|redis_memory|sess-1': 2 source keys name thread 'sess-1'"
    ) in done.stderr

    bad = cli("migrate", "langchain", "--source-url", "redis://user:s3cret-pw@127.0.0.1:1/0", url=redis_url)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: Redis at 127.0.0.1:1/0 (the source) is unreachable")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "s3cret-pw" not in bad.stderr
