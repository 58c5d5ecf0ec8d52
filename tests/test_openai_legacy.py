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
