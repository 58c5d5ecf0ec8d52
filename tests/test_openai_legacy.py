"""The seed's own path: the real legacy OpenAIChatClient (openai SDK) against a local stub."""

from __future__ import annotations

import pytest

from agent_framework_redis_store import RedisChatMessageStore

from .openai_stub import OpenAIStub

pytestmark = pytest.mark.legacy


async def test_openai_client_sees_history_resumed_from_redis(redis_url: str) -> None:
    from agent_framework import AgentThread  # pyright: ignore[reportAttributeAccessIssue]
    from agent_framework.openai import OpenAIChatClient  # pyright: ignore[reportAttributeAccessIssue]
    from openai import AsyncOpenAI  # pyright: ignore[reportMissingImports]

    with OpenAIStub() as stub:
        client = AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url)
        agent = OpenAIChatClient(model_id=stub.model, async_client=client).create_agent(  # pyright: ignore[reportCallIssue, reportAttributeAccessIssue]
            name="RedisBot", instructions="You remember."
        )
        store = RedisChatMessageStore(redis_url, thread_id="openai_thread")
        first = await agent.run("My name is Alice.", thread=AgentThread(message_store=store))
        assert first.text == "seen 1: My name is Alice."
        state = await AgentThread(message_store=store).serialize()
        await store.aclose()

        restored = await AgentThread.deserialize(state, message_store=RedisChatMessageStore(redis_url))
        second = await agent.run("What is my name?", thread=restored)

        # The second HTTP request carried the first turn, loaded back from Redis.
        assert stub.user_texts(1) == ["My name is Alice.", "What is my name?"]
        assert second.text == "seen 2: My name is Alice. | What is my name?"
        assert restored.message_store is not None
        await restored.message_store.aclose()  # type: ignore[union-attr]


@pytest.mark.parametrize("answer", ["ignored", "approved", "rejected"])
async def test_a_tool_approval_left_unanswered_never_blocks_the_thread(redis_url: str, answer: str) -> None:
    from agent_framework import AgentThread, ChatMessage, ai_function  # pyright: ignore[reportAttributeAccessIssue]
    from agent_framework.openai import OpenAIChatClient  # pyright: ignore[reportAttributeAccessIssue]
    from openai import AsyncOpenAI  # pyright: ignore[reportMissingImports]

    @ai_function(approval_mode="always_require")  # pyright: ignore[reportUntypedFunctionDecorator]
    def add(a: int, b: int) -> int:
        """Add two numbers (needs approval)."""
        return a + b

    with OpenAIStub() as stub:
        client = OpenAIChatClient(
            model_id=stub.model, async_client=AsyncOpenAI(api_key=stub.api_key, base_url=stub.base_url)
        )  # pyright: ignore[reportCallIssue]
        agent = client.create_agent(name="RedisBot", instructions="You add.", tools=[add])  # pyright: ignore[reportAttributeAccessIssue]
        store = RedisChatMessageStore(redis_url, thread_id="t")
        thread = AgentThread(message_store=store)
        pending = await agent.run('call add {"a": 1, "b": 2}', thread=thread)
        [request] = pending.user_input_requests
        if answer != "ignored":  # answered first: the approval flow still works
            response = ChatMessage(role="user", contents=[request.create_response(approved=answer == "approved")])
            reply = await agent.run(response, thread=thread)
            expected = "3" if answer == "approved" else "Error: Tool call invocation was rejected by user."
            assert reply.text == f"tool call_1 returned {expected}"
        # The user moves on (without answering, when ignored), then two more turns.
        replies = [(await agent.run(text, thread=thread)).text for text in ("never mind", "hello", "again")]
        assert stub.rejections == []
        assert replies[-1] == 'seen 4: call add {"a": 1, "b": 2} | never mind | hello | again'
        await store.aclose()
