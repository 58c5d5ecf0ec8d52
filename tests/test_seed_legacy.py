"""The seed notebook's five examples, with the real legacy AgentThread / create_agent.

The scripted model answers ``"seen N: <every user text it received>"``, so each assertion on
a reply proves which history reached the model.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest

from agent_framework_redis_store import RedisChatMessageStore

from .scripted import ScriptedChatClient, make_agent, role_of

pytestmark = pytest.mark.legacy


def _agent_thread() -> Any:
    from agent_framework import AgentThread  # pyright: ignore[reportAttributeAccessIssue]

    return AgentThread


async def test_example_1_basic_store(redis_url: str) -> None:
    redis_store = RedisChatMessageStore(redis_url=redis_url)
    thread = _agent_thread()(message_store=redis_store)
    agent = make_agent(ScriptedChatClient(), "You remember our conversation using Redis.")

    await agent.run("Hello! My name is Alice and I love pizza.", thread=thread)
    response = await agent.run("What do you remember about me?", thread=thread)

    assert response.text == "seen 2: Hello! My name is Alice and I love pizza. | What do you remember about me?"
    messages = await redis_store.list_messages()
    assert [role_of(m) for m in messages] == ["user", "assistant", "user", "assistant"]
    await redis_store.clear()
    assert await redis_store.count() == 0
    await redis_store.aclose()


@pytest.mark.parametrize("use_package_factory", [False, True])
async def test_example_2_user_sessions_through_a_store_factory(redis_url: str, use_package_factory: bool) -> None:
    user_id, session_id = "alice_123", f"session_{uuid4()}"
    thread_id = f"user_{user_id}_{session_id}"

    def create_user_session_store() -> RedisChatMessageStore:
        return RedisChatMessageStore(redis_url=redis_url, thread_id=thread_id, max_messages=10)

    factory = (
        RedisChatMessageStore.factory(redis_url, thread_id=lambda: thread_id, max_messages=10)
        if use_package_factory
        else create_user_session_store
    )
    agent = make_agent(ScriptedChatClient(), "Keep track of user preferences.", chat_message_store_factory=factory)
    thread = agent.get_new_thread()
    assert thread.message_store.thread_id == thread_id

    queries = [
        "Hi, I'm Alice and I prefer vegetarian food.",
        "What restaurants would you recommend?",
        "I also love Italian cuisine.",
        "Can you remember my food preferences?",
    ]
    replies = [(await agent.run(query, thread=thread)).text for query in queries]
    assert replies[-1] == "seen 4: " + " | ".join(queries)
    assert await thread.message_store.count() == 8

    await thread.message_store.clear()
    await thread.message_store.aclose()
    if use_package_factory:
        await factory.aclose()  # type: ignore[union-attr]


async def test_example_3_conversation_survives_an_application_restart(redis_url: str) -> None:
    agent = make_agent(ScriptedChatClient(), "Remember our conversation history.")
    store1 = RedisChatMessageStore(redis_url=redis_url, thread_id="persistent_chat_001")
    thread1 = _agent_thread()(message_store=store1)
    await agent.run("Hello! I'm working on a Python project about machine learning.", thread=thread1)
    await agent.run("I'm specifically interested in neural networks.", thread=thread1)
    assert len(await store1.list_messages()) == 4
    await store1.aclose()

    # A new process would build everything again; so do we, agent included.
    agent = make_agent(ScriptedChatClient(), "Remember our conversation history.")
    store2 = RedisChatMessageStore(redis_url=redis_url, thread_id="persistent_chat_001")
    thread2 = _agent_thread()(message_store=store2)
    response = await agent.run("What was I working on before?", thread=thread2)
    assert response.text.startswith("seen 3: Hello! I'm working on a Python project about machine learning.")
    await agent.run("Can you suggest some Python libraries for neural networks?", thread=thread2)
    assert len(await store2.list_messages()) == 8
    await store2.clear()
    await store2.aclose()


async def test_example_4_serialized_thread_resumes_with_the_stock_agent_thread(redis_url: str) -> None:
    AgentThread = _agent_thread()
    original_store = RedisChatMessageStore(redis_url=redis_url, thread_id="serialization_test", max_messages=50)
    original_thread = AgentThread(message_store=original_store)
    agent = make_agent(ScriptedChatClient())
    await agent.run("Hello! I'm testing serialization.", thread=original_thread)

    serialized_thread = json.loads(json.dumps(await original_thread.serialize()))
    assert "testing serialization" not in json.dumps(serialized_thread)  # metadata only
    await original_store.aclose()

    restored_store = RedisChatMessageStore(redis_url=redis_url)
    restored_thread = await AgentThread.deserialize(serialized_thread, message_store=restored_store)
    assert restored_thread.message_store is restored_store
    assert restored_store.thread_id == "serialization_test"
    assert restored_store.max_messages == 50

    response = await agent.run("Do you remember what I said about testing?", thread=restored_thread)
    assert response.text == "seen 2: Hello! I'm testing serialization. | Do you remember what I said about testing?"
    assert await restored_store.count() == 4  # the thread reference itself was never stored
    await restored_store.clear()
    await restored_store.aclose()


async def test_example_4_variant_agent_deserialize_thread_uses_the_factory(redis_url: str) -> None:
    factory = RedisChatMessageStore.factory(redis_url)
    agent = make_agent(ScriptedChatClient(), chat_message_store_factory=factory)
    thread = agent.get_new_thread()
    await agent.run("Remember the word 'teapot'.", thread=thread)
    state = await thread.serialize()

    restored = await agent.deserialize_thread(state)
    assert restored.message_store.thread_id == thread.message_store.thread_id
    response = await agent.run("Which word?", thread=restored)
    assert response.text == "seen 2: Remember the word 'teapot'. | Which word?"
    await factory.aclose()


async def test_example_5_message_limits_and_trimming(redis_url: str) -> None:
    store = RedisChatMessageStore(redis_url=redis_url, thread_id="limits_test", max_messages=3)
    thread = _agent_thread()(message_store=store)
    agent = make_agent(ScriptedChatClient(), "You have limited memory.")
    queries = [
        "Message 1: Hello!",
        "Message 2: How are you?",
        "Message 3: What's the weather?",
        "Message 4: Tell me a joke.",
        "Message 5: This should trigger trimming.",
    ]
    for query in queries:
        await agent.run(query, thread=thread)
        assert len(await store.list_messages()) <= 3

    final = await store.list_messages()
    assert len(final) == 3
    # The newest three: answer 4, message 5, answer 5.
    assert final[1].text == "Message 5: This should trigger trimming."
    assert [role_of(m) for m in final] == ["assistant", "user", "assistant"]
    await store.clear()
    await store.aclose()


async def test_streaming_run_is_stored_once(redis_url: str) -> None:
    store = RedisChatMessageStore(redis_url, thread_id="stream")
    thread = _agent_thread()(message_store=store)
    agent = make_agent(ScriptedChatClient())
    chunks = [update.text async for update in agent.run_stream("Stream to me, please.", thread=thread)]
    assert "".join(chunks) == "seen 1: Stream to me, please."
    messages = await store.list_messages()
    assert [(role_of(m), m.text) for m in messages] == [
        ("user", "Stream to me, please."),
        ("assistant", "seen 1: Stream to me, please."),
    ]
    await store.aclose()


async def test_tool_approval_flow_survives_suspend_and_resume(redis_url: str) -> None:
    """Upstream issue #1991: this flow failed with 'Messages should be a list'."""
    from agent_framework import ChatMessage, ai_function  # pyright: ignore[reportAttributeAccessIssue]

    calls: list[str] = []

    @ai_function(approval_mode="always_require")
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    AgentThread = _agent_thread()
    agent = make_agent(ScriptedChatClient(), tools=[get_weather])
    store = RedisChatMessageStore(redis_url, thread_id="approval")
    thread = AgentThread(message_store=store)

    first = await agent.run('call get_weather {"city": "Paris"}', thread=thread)
    [request] = first.user_input_requests
    assert request.function_call.name == "get_weather"
    assert calls == []

    # Suspend while the approval is pending, resume in a "new process".
    state = json.loads(json.dumps(await thread.serialize()))
    await store.aclose()
    restored_store = RedisChatMessageStore(redis_url)
    restored = await AgentThread.deserialize(state, message_store=restored_store)

    approval = ChatMessage(role="user", contents=[request.create_response(approved=True)])
    final = await agent.run(approval, thread=restored)
    assert calls == ["Paris"]
    assert "returned sunny in Paris" in final.text

    kinds = [type(c).__name__ for m in await restored_store.list_messages() for c in m.contents]
    assert "FunctionApprovalRequestContent" in kinds
    assert "FunctionCallContent" in kinds
    assert "FunctionResultContent" in kinds
    # And the next ordinary turn still works on the reloaded history.
    after = await agent.run("thanks", thread=restored)
    assert after.text.startswith("seen ")
    assert after.text.endswith("| thanks")
    await restored_store.aclose()
