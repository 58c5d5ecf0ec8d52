"""Trimmed and windowed histories through the real OpenAI clients, against a stub as strict as the API.

The stub answers HTTP 400 to a tool result without its call (and to a call without its
results), as OpenAI does. Turns with parallel tool calls under every ``max_messages`` from
1 to 15 and every window from 1 to 11 must never get one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import Keyspace, RedisChatMessageStore
from agent_framework_redis_store._core.codec import encode_message_dict

from .openai_stub import OpenAIStub

PARALLEL = "calls " + json.dumps([["add", {"a": 1, "b": 2}], ["add", {"a": 3, "b": 4}]])
TURNS = [PARALLEL, "thanks", PARALLEL, "and again", PARALLEL]


def test_the_stub_rejects_what_openai_rejects() -> None:
    from openai import BadRequestError, OpenAI

    with OpenAIStub() as stub:
        client = OpenAI(api_key=stub.api_key, base_url=stub.base_url)
        orphan = [{"role": "tool", "tool_call_id": "c1", "content": "3"}, {"role": "user", "content": "hi"}]
        with pytest.raises(BadRequestError, match="must be a response to a preceeding message with 'tool_calls'"):
            client.chat.completions.create(model=stub.model, messages=orphan)  # type: ignore[arg-type]
        unanswered = [
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "user", "content": "hi"},
        ]
        with pytest.raises(BadRequestError, match="did not have response messages: c1"):
            client.chat.completions.create(model=stub.model, messages=unanswered)  # type: ignore[arg-type]
        with pytest.raises(BadRequestError, match="No tool call found for function call output with call_id c1"):
            client.responses.create(
                model=stub.model, input=[{"type": "function_call_output", "call_id": "c1", "output": "3"}]
            )
        assert len(stub.rejections) == 3


@pytest.mark.legacy
@pytest.mark.parametrize("max_messages", range(1, 16))
async def test_legacy_agent_with_trimmed_history_is_never_rejected(redis_url: str, max_messages: int) -> None:
    from agent_framework import AgentThread, ai_function  # pyright: ignore[reportAttributeAccessIssue]
    from agent_framework.openai import OpenAIChatClient  # pyright: ignore[reportAttributeAccessIssue]
    from openai import AsyncOpenAI

    @ai_function
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    with OpenAIStub() as stub:
        client = OpenAIChatClient(
            model_id=stub.model, async_client=AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url)
        )  # pyright: ignore[reportCallIssue]
        agent = client.create_agent(name="RedisBot", instructions="You add.", tools=[add])  # pyright: ignore[reportAttributeAccessIssue]
        store = RedisChatMessageStore(redis_url, thread_id="t", max_messages=max_messages)
        thread = AgentThread(message_store=store)
        for text in TURNS:
            await agent.run(text, thread=thread)
        assert stub.rejections == []
        assert len(stub.requests) == 8  # two per tool turn, one per plain turn
        assert await store.count() <= max_messages
        await store.aclose()


async def _run_current(client: Any, redis_url: str, options: dict[str, Any], agent_options: dict[str, Any]) -> None:
    from agent_framework import Agent, tool

    from agent_framework_redis_store import RedisChatHistoryProvider

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    async with RedisChatHistoryProvider(redis_url, **options) as history:
        agent = Agent(client, "You add.", name="RedisBot", context_providers=[history], default_options=agent_options)
        session = agent.create_session(session_id="s")
        for text in TURNS:
            await agent.run(text, session=session, tools=[add])


@pytest.mark.current
@pytest.mark.parametrize("max_messages", range(1, 16))
async def test_chat_completions_with_trimmed_history_is_never_rejected(redis_url: str, max_messages: int) -> None:
    from agent_framework.openai import OpenAIChatCompletionClient
    from openai import AsyncOpenAI

    with OpenAIStub() as stub:
        client = OpenAIChatCompletionClient(
            stub.model, async_client=AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url)
        )
        await _run_current(client, redis_url, {"max_messages": max_messages}, {})
        assert stub.rejections == []
        assert len(stub.requests) == 8


@pytest.mark.current
@pytest.mark.parametrize("window", range(1, 12))
async def test_responses_with_a_window_is_never_rejected(redis_url: str, window: int) -> None:
    from agent_framework.openai import OpenAIChatClient
    from openai import AsyncOpenAI

    with OpenAIStub() as stub:
        client = OpenAIChatClient(stub.model, async_client=AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url))
        await _run_current(client, redis_url, {"context_messages": window}, {"store": False})
        assert stub.rejections == []
        assert len(stub.requests) == 8


@pytest.mark.legacy
async def test_history_orphaned_by_an_older_version_is_repaired_before_it_reaches_openai(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    from agent_framework import AgentThread  # pyright: ignore[reportAttributeAccessIssue]
    from agent_framework.openai import OpenAIChatClient  # pyright: ignore[reportAttributeAccessIssue]
    from openai import AsyncOpenAI

    # What a plain LTRIM leaves: a tool result whose call was trimmed away.
    orphan = {"role": "tool", "contents": [{"type": "function_result", "call_id": "gone", "result": "3"}]}
    answer = {"role": "assistant", "contents": [{"type": "text", "text": "it is 3"}]}
    await raw.rpush(Keyspace().thread("t").messages, encode_message_dict(orphan), encode_message_dict(answer))
    with OpenAIStub() as stub:
        client = OpenAIChatClient(
            model_id=stub.model, async_client=AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url)
        )  # pyright: ignore[reportCallIssue]
        agent = client.create_agent(name="RedisBot", instructions="You remember.")  # pyright: ignore[reportAttributeAccessIssue]
        store = RedisChatMessageStore(redis_url, thread_id="t")
        reply = await agent.run("hello", thread=AgentThread(message_store=store))
        assert reply.text == "seen 1: hello"
        assert stub.rejections == []
        assert [m["role"] for m in stub.requests[0]["messages"]] == ["system", "assistant", "user"]
        await store.aclose()
