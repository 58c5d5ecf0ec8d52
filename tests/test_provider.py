"""RedisChatHistoryProvider with the real 1.x Agent and a scripted model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, thread_key
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import ScriptedChatClient, make_agent, user_message

pytestmark = pytest.mark.current


def texts(messages: list[Any]) -> list[str]:
    return [m.text for m in messages]


def kinds(messages: list[Any]) -> list[tuple[str, list[str]]]:
    return [(str(m.role), [c.type for c in m.contents]) for m in messages]


@pytest.fixture
async def provider(redis_url: str) -> AsyncIterator[Any]:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url) as history:
        yield history


def tools() -> list[Any]:
    from agent_framework import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @tool(approval_mode="always_require")
    def transfer(amount: int) -> str:
        """Move money (needs approval)."""
        return f"moved {amount}"

    return [add, transfer]


async def test_agent_remembers_each_session_separately(provider: Any, raw: redis.asyncio.Redis) -> None:
    agent = make_agent(ScriptedChatClient(), context_providers=[provider])
    alice, bob = agent.create_session(session_id="alice"), agent.create_session(session_id="bob")
    await agent.run("I am Alice", session=alice)
    await agent.run("I am Bob", session=bob)
    answer = await agent.run("Who am I?", session=alice)
    assert answer.text == "seen 2: I am Alice | Who am I?"
    # The session id is the thread id, in the core store's key layout.
    assert await raw.llen(thread_key("chat_messages", "alice")) == 4
    assert await raw.llen(thread_key("chat_messages", "bob")) == 2


async def test_a_serialized_session_resumes_in_a_fresh_provider(redis_url: str) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url) as first:
        agent = make_agent(ScriptedChatClient(), context_providers=[first])
        session = agent.create_session()
        await agent.run("My name is Alice.", session=session)
        snapshot = json.dumps(session.to_dict())

    # Another process: new provider, new client, new agent; only the JSON travels.
    async with RedisChatHistoryProvider(redis_url) as second:
        client = ScriptedChatClient()
        agent = make_agent(client, context_providers=[second])
        restored = AgentSession.from_dict(json.loads(snapshot))
        answer = await agent.run("What is my name?", session=restored)
    assert answer.text == "seen 2: My name is Alice. | What is my name?"
    assert texts(client.recorder.requests[0]) == ["My name is Alice.", "seen 1: My name is Alice.", "What is my name?"]


async def test_reads_and_extends_a_thread_the_store_wrote(redis_url: str, provider: Any) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="shared") as store:
        await store.add_messages([user_message("written by the store")])
        agent = make_agent(ScriptedChatClient(), context_providers=[provider])
        answer = await agent.run("and now a session", session=agent.create_session(session_id="shared"))
        assert answer.text == "seen 2: written by the store | and now a session"
        assert texts(await store.list_messages()) == [
            "written by the store",
            "and now a session",
            "seen 2: written by the store | and now a session",
        ]


class _ContextRecorder:
    """A context provider that keeps each run's SessionContext (to persist the run again)."""

    def __new__(cls) -> Any:
        from agent_framework import ContextProvider

        class Recorder(ContextProvider):
            def __init__(self) -> None:
                super().__init__("recorder")
                self.contexts: list[Any] = []

            async def after_run(self, *, agent: Any, session: Any, context: Any, state: Any) -> None:
                self.contexts.append(context)

        return Recorder()


async def test_a_run_persisted_twice_is_stored_once(provider: Any) -> None:
    from agent_framework import SessionContext

    recorder = _ContextRecorder()
    agent = make_agent(ScriptedChatClient(), context_providers=[provider, recorder])
    session = agent.create_session(session_id="twice")
    await agent.run("yes", session=session)
    context = recorder.contexts[-1]
    state = session.state.setdefault(provider.source_id, {})

    # The same run's after_run again (e.g. a deferred persistence flushed twice).
    await provider.after_run(agent=agent, session=session, context=context, state=state)
    # The same messages through a new context (e.g. another persistence path of the same run).
    copy = SessionContext(session_id="twice", input_messages=list(context.input_messages))
    copy._response = context.response
    await provider.after_run(agent=agent, session=session, context=copy, state=state)
    assert texts(await provider.get_messages("twice")) == ["yes", "seen 1: yes"]


async def test_inputs_only_run_persisted_twice_is_stored_once(redis_url: str) -> None:
    # A lone user message without an id is never taken for a repeat by content ("yes", "yes"
    # are two answers), so only the run's own idempotency key can recognise this repeat.
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url, store_outputs=False) as provider:
        recorder = _ContextRecorder()
        agent = make_agent(ScriptedChatClient(), context_providers=[provider, recorder])
        session = agent.create_session(session_id="inputs")
        await agent.run("yes", session=session)
        state = session.state.setdefault(provider.source_id, {})
        await provider.after_run(agent=agent, session=session, context=recorder.contexts[-1], state=state)
        assert texts(await provider.get_messages("inputs")) == ["yes"]
        await agent.run("yes", session=session)
        assert texts(await provider.get_messages("inputs")) == ["yes", "yes"]


async def test_retried_save_is_stored_once(provider: Any) -> None:
    from agent_framework import Message

    turn = [user_message("question"), Message(role="assistant", contents=["answer"])]
    await provider.save_messages("retry", turn)
    await provider.save_messages("retry", turn)  # the reply of the first was lost, say
    assert texts(await provider.get_messages("retry")) == ["question", "answer"]

    lone = [user_message("ok")]
    await provider.save_messages("retry", lone, idempotency_key="request-7")
    await provider.save_messages("retry", lone, idempotency_key="request-7")
    assert texts(await provider.get_messages("retry")) == ["question", "answer", "ok"]


async def test_a_replayed_transcript_stores_only_the_new_messages(provider: Any) -> None:
    # Clients that send the whole conversation every turn (AG-UI style).
    agent = make_agent(ScriptedChatClient(), context_providers=[provider])
    session = agent.create_session(session_id="replay")
    transcript = [user_message("one")]
    for text in ["two", "three"]:
        response = await agent.run(transcript, session=session)
        transcript = [*transcript, *response.messages, user_message(text)]
    response = await agent.run(transcript, session=session)
    stored = await provider.get_messages("replay")
    assert [str(m.role) for m in stored] == ["user", "assistant"] * 3
    assert texts(stored)[::2] == ["one", "two", "three"]
    assert stored[-1].text == response.text

    # A replay of exactly what is stored (a client retrying the last request) adds nothing.
    await provider.save_messages("replay", stored)
    assert await provider.store_for("replay").count() == 6


async def test_replay_of_history_loaded_from_redis_is_recognised(provider: Any) -> None:
    agent = make_agent(ScriptedChatClient(), context_providers=[provider])
    session = agent.create_session(session_id="loaded")
    await agent.run("first", session=session)
    await agent.run("second", session=session)
    loaded = await provider.get_messages("loaded")
    await provider.save_messages("loaded", [*loaded, user_message("third")])
    assert texts(await provider.get_messages("loaded")) == [*texts(loaded), "third"]


async def test_identical_turn_after_another_writer_is_not_lost(redis_url: str, provider: Any) -> None:
    from agent_framework import Message

    turn = [user_message("ping"), Message(role="assistant", contents=["pong"])]
    await provider.save_messages("mixed", turn)
    async with RedisChatMessageStore(redis_url, thread_id="mixed") as store:
        await store.add_messages([user_message("from a legacy writer")])
    # The fingerprints no longer describe the newest messages, so nothing is taken for a repeat.
    await provider.save_messages("mixed", turn)
    assert texts(await provider.get_messages("mixed")) == ["ping", "pong", "from a legacy writer", "ping", "pong"]


async def test_streaming_runs_persist_once_and_continue(provider: Any) -> None:
    agent = make_agent(ScriptedChatClient(), context_providers=[provider], tools=tools())
    session = agent.create_session(session_id="stream")
    stream = agent.run("hello there", session=session, stream=True)
    pieces = [update.text async for update in stream]
    final = await stream.get_final_response()
    assert "".join(pieces) == final.text == "seen 1: hello there"

    stream = agent.run('call add {"a": 2, "b": 3}', session=session, stream=True)
    async for _ in stream:
        pass
    assert (await stream.get_final_response()).text == "tool call_2 returned 5"

    stored = await provider.get_messages("stream")
    assert kinds(stored) == [
        ("user", ["text"]),
        ("assistant", ["text"]),
        ("user", ["text"]),
        ("assistant", ["function_call"]),
        ("tool", ["function_result"]),
        ("assistant", ["text"]),
    ]
    answer = await agent.run("and now?", session=session)
    assert answer.text == 'seen 3: hello there | call add {"a": 2, "b": 3} | and now?'


async def test_tool_calls_and_results_reload_into_a_working_turn(redis_url: str, provider: Any) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    agent = make_agent(ScriptedChatClient(), context_providers=[provider], tools=tools())
    session = agent.create_session(session_id="tools")
    answer = await agent.run('call add {"a": 1, "b": 2}', session=session)
    assert answer.text == "tool call_1 returned 3"
    assert await provider.store_for("tools").count() == 4

    async with RedisChatHistoryProvider(redis_url) as fresh:
        client = ScriptedChatClient()
        agent = make_agent(client, context_providers=[fresh], tools=tools())
        answer = await agent.run("what was it?", session=agent.create_session(session_id="tools"))
    assert answer.text == 'seen 2: call add {"a": 1, "b": 2} | what was it?'
    # The model got the call and its result back, paired by call id.
    sent = client.recorder.requests[0]
    call = next(c for m in sent for c in m.contents if c.type == "function_call")
    result = next(c for m in sent for c in m.contents if c.type == "function_result")
    assert (call.name, call.call_id, result.call_id, result.result) == ("add", "call_1", "call_1", "3")


async def test_tool_approval_flow_across_processes(redis_url: str) -> None:
    from agent_framework import AgentSession, Message

    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url) as provider:
        agent = make_agent(ScriptedChatClient(), context_providers=[provider], tools=tools())
        session = agent.create_session(session_id="approval")
        pending = await agent.run('call transfer {"amount": 50}', session=session)
        [request] = pending.user_input_requests
        snapshot = json.dumps(session.to_dict())

    # The approval arrives later, in another process.
    async with RedisChatHistoryProvider(redis_url) as provider:
        agent = make_agent(ScriptedChatClient(), context_providers=[provider], tools=tools())
        session = AgentSession.from_dict(json.loads(snapshot))
        approval = Message(role="user", contents=[request.to_function_approval_response(True)])
        done = await agent.run(approval, session=session)
        assert done.text == "tool call_1 returned moved 50"
        after = await agent.run("thanks", session=session)
        assert after.text == 'seen 2: call transfer {"amount": 50} | thanks'

        stored = await provider.get_messages("approval")
        assert kinds(stored) == [
            ("user", ["text"]),
            ("assistant", ["function_call", "function_approval_request"]),
            ("user", ["function_approval_response"]),
            ("tool", ["function_result"]),
            ("assistant", ["text"]),
            ("user", ["text"]),
            ("assistant", ["text"]),
        ]


async def test_max_messages_and_sliding_ttl(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url, max_messages=3, ttl=100) as provider:
        agent = make_agent(ScriptedChatClient(), context_providers=[provider])
        session = agent.create_session(session_id="window")
        for text in ["one", "two", "three"]:
            await agent.run(text, session=session)
        assert texts(await provider.get_messages("window")) == ["seen 2: one | two", "three", "seen 2: two | three"]
        key = thread_key("chat_messages", "window")
        await raw.pexpire(key, 5_000)
        await agent.run("four", session=session)
        assert 99_000 < await raw.pttl(key) <= 100_000
        assert 99_000 < await raw.pttl(Keyspace("chat_messages").thread("window").fingerprints) <= 100_000


async def test_store_for_shares_the_pool_and_aclose_closes_only_what_it_opened(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url) as provider:
        await provider.save_messages("s", [user_message("hi")])
        store = provider.store_for("s")
        assert store.redis_client is provider.redis_client
        assert (await store.count(), await store.ping()) == (1, True)
        await store.aclose()  # leaves the shared pool open
        assert texts(await provider.get_messages("s")) == ["hi"]
        await provider.clear("s")
        assert await store.list_messages() == []

    borrowed = RedisChatHistoryProvider(redis_client=raw)
    await borrowed.save_messages("b", [user_message("kept")])
    await borrowed.aclose()
    assert await raw.llen(thread_key("chat_messages", "b")) == 1  # the caller's client still works


async def test_ten_thousand_sessions_stay_within_the_pool() -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    server = EmbeddedRedis().start()  # a private server: every client on it is ours
    # 10,000 coroutines on one loop can starve any socket's timer for seconds on a busy machine:
    # the observer and the provider get generous timeouts (this test is about the pool's bound).
    inspector = redis.asyncio.Redis.from_url(server.url, socket_timeout=120, socket_connect_timeout=120)
    try:
        await inspector.ping()
        provider = RedisChatHistoryProvider(
            server.url, max_connections=8, socket_timeout=120, socket_connect_timeout=120, pool_timeout=None
        )
        peak = 0
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, len(await inspector.client_list()) - 1)
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(provider.save_messages(f"user_{n}", [user_message(f"hi {n}")]) for n in range(10_000)))
        done.set()
        await sampler
        assert 1 <= peak <= 8
        assert len(await inspector.keys("chat_messages:{user_*}")) == 10_000
        assert texts(await provider.get_messages("user_9999")) == ["hi 9999"]

        await provider.aclose()
        for _ in range(500):  # the server notices the closed sockets within milliseconds
            if len(await inspector.client_list()) == 1:
                break
            await asyncio.sleep(0.01)
        assert len(await inspector.client_list()) == 1
    finally:
        await inspector.aclose()
        server.stop()


async def test_bad_input_is_named(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    with pytest.raises(ValueError, match="max_messages"):
        RedisChatHistoryProvider(redis_url, max_messages=-1)
    with pytest.raises(ValueError, match="ttl"):
        RedisChatHistoryProvider(redis_url, ttl=0)
    with pytest.raises(ValueError, match="key_prefix"):
        RedisChatHistoryProvider(redis_url, key_prefix="a{b}")
    with pytest.raises(ValueError, match="source_id"):
        RedisChatHistoryProvider(redis_url, source_id="")
    with pytest.raises(ValueError, match="redis_client"):
        RedisChatHistoryProvider(redis_url, redis_client=raw)
    async with RedisChatHistoryProvider(redis_url) as provider:
        with pytest.raises(ValueError, match="session_id is required"):
            await provider.get_messages(None)
        with pytest.raises(ValueError, match="session_id"):
            provider.store_for("")
        with pytest.raises(TypeError, match="messages must be a sequence"):
            await provider.save_messages("s", user_message("not a list"))
        await provider.save_messages("s", [user_message("kept")])
        await raw.rpush(thread_key("chat_messages", "s"), "not json")
        with pytest.raises(Exception, match=r"chat_messages:\{s\}.*index 1"):
            await provider.get_messages("s")
        assert await raw.lindex(thread_key("chat_messages", "s"), 0) is not None
