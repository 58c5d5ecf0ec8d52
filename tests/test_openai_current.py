"""The real 1.x OpenAI clients (openai SDK) with RedisChatHistoryProvider, against a local stub."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .openai_stub import OpenAIStub

pytestmark = pytest.mark.current


def agent_for(client: Any, provider: Any, **options: Any) -> Any:
    from agent_framework import Agent

    return Agent(client, "You remember.", name="RedisBot", context_providers=[provider], default_options=options)


async def test_responses_client_gets_the_first_turn_back_from_redis(redis_url: str) -> None:
    from agent_framework import AgentSession
    from agent_framework.openai import OpenAIChatClient
    from openai import AsyncOpenAI

    from agent_framework_redis_store import RedisChatHistoryProvider

    with OpenAIStub() as stub:
        client = OpenAIChatClient(stub.model, async_client=AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url))
        # The Responses API keeps history on the server unless told not to; store=False makes
        # Redis the history, so each request carries the conversation.
        async with RedisChatHistoryProvider(redis_url) as provider:
            agent = agent_for(client, provider, store=False)
            session = agent.create_session(session_id="openai_session")
            first = await agent.run("My name is Alice.", session=session)
            assert first.text == "seen 1: My name is Alice."
            snapshot = json.dumps(session.to_dict())

        async with RedisChatHistoryProvider(redis_url) as provider:
            agent = agent_for(client, provider, store=False)
            second = await agent.run("What is my name?", session=AgentSession.from_dict(json.loads(snapshot)))
            assert second.text == "seen 2: My name is Alice. | What is my name?"
            assert stub.user_texts(1) == ["My name is Alice.", "What is my name?"]
            assert stub.requests[1]["store"] is False
            stored = await provider.get_messages("openai_session")
    assert [(str(m.role), m.text) for m in stored] == [
        ("user", "My name is Alice."),
        ("assistant", "seen 1: My name is Alice."),
        ("user", "What is my name?"),
        ("assistant", "seen 2: My name is Alice. | What is my name?"),
    ]


async def test_chat_completions_client_streams_tools_and_resumes(redis_url: str) -> None:
    from agent_framework import tool
    from agent_framework.openai import OpenAIChatCompletionClient
    from openai import AsyncOpenAI

    from agent_framework_redis_store import RedisChatHistoryProvider

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    with OpenAIStub() as stub:
        client = OpenAIChatCompletionClient(
            stub.model, async_client=AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url)
        )
        async with RedisChatHistoryProvider(redis_url) as provider:
            agent = agent_for(client, provider)
            session = agent.create_session(session_id="completions")
            answer = await agent.run('call add {"a": 4, "b": 5}', session=session, tools=[add])
            assert answer.text == "tool call_1 returned 9"
            stream = agent.run("and then?", session=session, stream=True)
            streamed = "".join([update.text async for update in stream])
            assert streamed == 'seen 2: call add {"a": 4, "b": 5} | and then?'
            await stream.get_final_response()

            # The streamed request carried the tool call and its result, read back from Redis.
            roles = [m["role"] for m in stub.requests[-1]["messages"]]
            assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
            assert await provider.store_for("completions").count() == 6


@pytest.mark.parametrize("answer", ["ignored", "approved", "rejected"])
async def test_a_tool_approval_left_unanswered_never_blocks_the_session(redis_url: str, answer: str) -> None:
    from agent_framework import Message, tool
    from agent_framework.openai import OpenAIChatCompletionClient
    from openai import AsyncOpenAI

    from agent_framework_redis_store import RedisChatHistoryProvider

    @tool(approval_mode="always_require")
    def add(a: int, b: int) -> int:
        """Add two numbers (needs approval)."""
        return a + b

    with OpenAIStub() as stub:
        client = OpenAIChatCompletionClient(
            stub.model, async_client=AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url)
        )
        async with RedisChatHistoryProvider(redis_url) as provider:
            agent = agent_for(client, provider)
            session = agent.create_session(session_id="s")
            pending = await agent.run('call add {"a": 1, "b": 2}', session=session, tools=[add])
            [request] = pending.user_input_requests
            if answer != "ignored":  # answered first: the approval flow still works
                response = Message(role="user", contents=[request.to_function_approval_response(answer == "approved")])
                reply = await agent.run(response, session=session, tools=[add])
                assert reply.text.startswith("tool call_1 returned ")
            # The user moves on (without answering, when ignored), then two more turns.
            replies = [
                (await agent.run(text, session=session, tools=[add])).text for text in ("never mind", "hello", "again")
            ]
    assert stub.rejections == []
    assert replies[-1] == 'seen 4: call add {"a": 1, "b": 2} | never mind | hello | again'
