"""Record what Microsoft's own Redis stores write, byte for byte, for ``tests/test_migrate.py``.

Each upstream store writes a few threads to a private redis-server; the fixture keeps
every key and every list entry exactly as stored, what the store itself reads back, and
the arguments that made each thread. The tests replay the keys into their own server, so
both framework generations can migrate exactly what the real stores wrote, including the
store that cannot be installed beside the test environment.

Run in an environment that has the upstream package (the fixture names its version)::

    # agent-framework-redis 1.0.0b251223: the legacy RedisChatMessageStore
    .venv-legacy/bin/python -m tests.upstream.record
    # agent-framework-redis 1.0.0b261022: the 1.x RedisHistoryProvider (needs redis<7.2.1: the bench group)
    UV_PROJECT_ENVIRONMENT=.venv-bench uv run --locked --group bench python -m tests.upstream.record

``python -m tests.upstream.record --print`` writes the fixture to stdout instead.
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis.asyncio

from agent_framework_redis_store.testing import EmbeddedRedis

HERE = Path(__file__).resolve().parent
LEGACY_VERSION = "1.0.0b251223"
CURRENT_VERSION = "1.0.0b261022"
# Not literal-safe (upper case, spaces) and long: its base32 form is longer than 180
# characters, so the 1.x key keeps only its SHA-256 and the session id cannot be read back.
LONG_SESSION_ID = "Long Session " + "x" * 120


def fixture_path(upstream_version: str) -> Path:
    return HERE / f"agent_framework_redis_{upstream_version}.json"


async def _dump(client: redis.asyncio.Redis) -> dict[str, list[str]]:
    """Every key of the server (all lists) with its entries, as stored."""
    keys: dict[str, list[str]] = {}
    for key in sorted(await client.keys("*")):
        assert await client.type(key) == "list", key
        keys[str(key)] = [str(entry) for entry in await client.lrange(key, 0, -1)]  # decode_responses=True
    return keys


# -- agent-framework-redis 1.0.0b251223: RedisChatMessageStore (agent-framework-core 1.0.0b251223) ----------


def _legacy_conversation(prefix: str) -> list[Any]:
    from agent_framework import (  # pyright: ignore[reportAttributeAccessIssue]
        ChatMessage,  # pyright: ignore[reportAttributeAccessIssue]
        FunctionCallContent,  # pyright: ignore[reportAttributeAccessIssue]
        FunctionResultContent,  # pyright: ignore[reportAttributeAccessIssue]
        TextContent,  # pyright: ignore[reportAttributeAccessIssue]
    )

    return [
        ChatMessage(
            role="user", text=f"{prefix}: what is the weather in Paris?", message_id="msg1", author_name="alice"
        ),
        ChatMessage(
            role="assistant",
            contents=[
                FunctionCallContent(call_id="call_1", name="get_weather", arguments={"city": "Paris"}),
                FunctionCallContent(call_id="call_2", name="get_time", arguments='{"tz": "CET"}'),
            ],
        ),
        ChatMessage(role="tool", contents=[FunctionResultContent(call_id="call_1", result="sunny")]),
        ChatMessage(role="tool", contents=[FunctionResultContent(call_id="call_2", result={"time": "12:00"})]),
        ChatMessage(
            role="assistant",
            contents=[TextContent(text="Sunny, and it is noon.")],
            additional_properties={"model": "gpt-x"},
        ),
    ]


async def _record_legacy_store(url: str) -> list[dict[str, Any]]:
    from agent_framework_redis import RedisChatMessageStore  # pyright: ignore[reportMissingImports]

    made = [
        {"thread_id": "thread-1", "key_prefix": "chat_messages"},
        # What a store without thread_id= generates (thread_<uuid4>), with a fixed uuid.
        {"thread_id": "thread_0f8fad5b-d9cb-469f-a165-70867728950e", "key_prefix": "chat_messages"},
        {"thread_id": "会话 1: Ünïcode", "key_prefix": "chat_messages"},
        {"thread_id": "t-9", "key_prefix": "support"},
    ]
    threads: list[dict[str, Any]] = []
    for spec in made:
        store = RedisChatMessageStore(redis_url=url, thread_id=spec["thread_id"], key_prefix=spec["key_prefix"])
        await store.add_messages(_legacy_conversation(spec["thread_id"]))
        read = await store.list_messages()
        threads.append({**spec, "key": store.redis_key, "read": [m.to_dict() for m in read]})
        await store._redis_client.aclose()  # the store has no aclose()
    return threads


# -- agent-framework-redis 1.0.0b261022: RedisHistoryProvider (agent-framework-core 1.x) ---------------------


def _current_conversation(prefix: str) -> list[Any]:
    from agent_framework import Content, Message

    return [
        Message("user", [f"{prefix}: what is the weather in Paris?"], message_id="msg1", author_name="alice"),
        Message(
            "assistant",
            [
                Content.from_function_call(call_id="call_1", name="get_weather", arguments={"city": "Paris"}),
                Content.from_function_call(call_id="call_2", name="get_time", arguments='{"tz": "CET"}'),
            ],
        ),
        Message("tool", [Content.from_function_result(call_id="call_1", result="sunny")]),
        Message("tool", [Content.from_function_result(call_id="call_2", result={"time": "12:00"})]),
        Message("assistant", ["Sunny, and it is noon."], additional_properties={"model": "gpt-x"}),
    ]


async def _record_history_provider(url: str) -> list[dict[str, Any]]:
    from agent_framework_redis import RedisHistoryProvider  # pyright: ignore[reportMissingImports]

    made: list[dict[str, Any]] = [
        {"application_id": "myapp", "session_id": "sess-1"},
        # Unsafe segments: base32 under ~redis-tenant-, ~redis-application-, ~redis-session-.
        {
            "tenant_id": "Contoso",
            "application_id": "App",
            "agent_id": "planner",
            "source_id": "memory",
            "session_id": "Sess 1",
        },
        # The same session id in another application: a conflict for a migration.
        {"application_id": "other", "session_id": "sess-1"},
        {"application_id": "myapp", "session_id": "会话"},
        {"application_id": "myapp", "session_id": LONG_SESSION_ID},
        {"application_id": "myapp", "session_id": "s-1", "key_prefix": "Support Chats"},
        {"key_format": "legacy", "session_id": "legacy-sess"},
        {"key_format": "legacy", "session_id": None},
    ]
    threads: list[dict[str, Any]] = []
    for spec in made:
        arguments = {k: v for k, v in spec.items() if k != "session_id"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # key_format="legacy" is deprecated
            provider = RedisHistoryProvider(redis_url=url, **arguments)
        session_id = spec["session_id"]
        await provider.save_messages(session_id, _current_conversation(str(session_id)))
        read = await provider.get_messages(session_id)
        key = provider._redis_key(session_id)
        threads.append(
            {
                "key_prefix": "chat_messages",
                "key_format": "scoped",
                "source_id": "redis_memory",
                **spec,
                "key": key,
                "read": [m.to_dict() for m in read],
            }
        )
        await provider.aclose()
    return threads


async def record() -> dict[str, Any]:
    """Write the installed upstream store's threads to a private server and describe what it stored."""
    upstream = version("agent-framework-redis")
    record_threads = {LEGACY_VERSION: _record_legacy_store, CURRENT_VERSION: _record_history_provider}.get(upstream)
    if record_threads is None:
        raise SystemExit(
            f"agent-framework-redis {upstream} is installed; this records {sorted([LEGACY_VERSION, CURRENT_VERSION])}"
        )
    with EmbeddedRedis() as server:
        threads = await record_threads(server.url)
        client = redis.asyncio.Redis.from_url(server.url, decode_responses=True)
        try:
            keys = await _dump(client)
        finally:
            await client.aclose()
    return {
        "package": f"agent-framework-redis {upstream}",
        "framework": f"agent-framework-core {version('agent-framework-core')}",
        "recorded_by": "python -m tests.upstream.record",
        "threads": threads,
        "keys": keys,
    }


def main() -> None:
    fixture = asyncio.run(record())
    text = json.dumps(fixture, indent=1, ensure_ascii=False) + "\n"
    if "--print" in sys.argv[1:]:
        sys.stdout.write(text)
        return
    path = fixture_path(fixture["package"].rsplit(" ", 1)[1])
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
