"""LangChain on the same threads: ``RedisChatMessageHistory`` against a real redis-server.

Its sync and async APIs, the store options it passes through, how it closes, and a
``RunnableWithMessageHistory`` chain and an Agent Framework agent continuing one thread in
both directions with tool calls (legacy ``AgentThread`` or 1.x session, per environment).
The conversion itself is tested in ``test_langchain_messages.py``.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import redis.asyncio
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, FunctionMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from agent_framework_redis_store import (
    AESGCMEncryption,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    RedisUnavailableError,
)
from agent_framework_redis_store._core.codec import encode_message
from agent_framework_redis_store.langchain import RedisChatMessageHistory

from .scripted import ScriptedChatClient, make_agent, role_of
from .test_langchain_messages import weather_turns

LOOP_THREAD = "RedisChatMessageHistory-sync"


def loop_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == LOOP_THREAD}


def wait_until(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


# -- the history on a real redis-server -------------------------------------------------------


def test_sync_methods_without_an_event_loop_store_the_thread_in_the_store_s_layout(redis_url: str) -> None:
    with RedisChatMessageHistory("weather", redis_url) as history:
        history.add_messages(weather_turns()[:3])
        history.add_message(weather_turns()[3])
        history.add_ai_message("It is sunny in Paris.")
        assert history.messages == weather_turns()
        assert history.thread_id == "weather"

    async def stored() -> list[Any]:
        async with RedisChatMessageStore(redis_url, thread_id="weather") as store:
            return await store.list_messages()

    # A plain RedisChatMessageStore reads the thread: roles, texts, the tool call and its result.
    messages = asyncio.run(stored())
    assert [role_of(m) for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert [m.text for m in messages] == ["be nice", "Weather in Paris?", "", "", "It is sunny in Paris."]
    (call,) = messages[2].contents
    (result,) = messages[3].contents
    assert (call.type, call.call_id, call.name, call.arguments) == (
        "function_call",
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert (result.type, result.call_id, result.result) == ("function_result", "call_1", "sunny")
    # Each entry is the framework's own to_dict() JSON as the store writes it (compacted).
    with redis.Redis.from_url(redis_url) as client:
        entries = client.lrange(Keyspace().thread("weather").messages, 0, -1)
    assert entries == [encode_message(m).encode() for m in messages]


async def test_sync_methods_work_inside_a_running_event_loop(redis_url: str) -> None:
    async with RedisChatMessageHistory("inside", redis_url) as history:
        history.add_messages([HumanMessage("hi")])  # no asyncio.run, no nested loop: the loop thread does it
        history.add_messages([AIMessage("hello")])
        assert history.messages == [HumanMessage("hi"), AIMessage("hello")]
        assert await history.aget_messages() == history.messages
        history.clear()
        assert await history.aget_messages() == []


async def test_async_methods(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageHistory("async", redis_url) as history:
        await history.aadd_messages(weather_turns())
        assert await history.aget_messages() == weather_turns()
        assert await history.store.count() == 5
        await history.aclear()
        assert await history.aget_messages() == []
    assert await raw.exists(*Keyspace().thread("async").owned) == 0
    assert not loop_threads()  # the async methods never start the loop thread


def test_clear_removes_every_key_and_the_registry_entry(redis_url: str) -> None:
    with RedisChatMessageHistory("gone", redis_url) as gone, RedisChatMessageHistory("kept", redis_url) as kept:
        gone.add_messages(weather_turns())
        kept.add_messages([HumanMessage("stay")])
        gone.clear()
        assert gone.messages == []
        assert kept.messages == [HumanMessage("stay")]
    with redis.Redis.from_url(redis_url) as client:
        assert client.exists(*Keyspace().thread("gone").owned) == 0
        assert client.zrange(Keyspace().registry, 0, -1) == [b"kept"]


async def test_store_options_apply_on_the_sync_and_the_async_side(redis_url: str, raw: redis.asyncio.Redis) -> None:
    options: dict[str, Any] = {"key_prefix": "lc", "max_messages": 3, "ttl": 3600, "labels": {"user": "alice"}}
    async with RedisChatMessageHistory("opts", redis_url, **options) as history:
        history.add_messages([HumanMessage(f"sync {n}") for n in range(4)])
        assert history.messages == [HumanMessage(f"sync {n}") for n in (1, 2, 3)]
        await history.aadd_messages([HumanMessage("async 0"), AIMessage("async 1")])
        assert await history.aget_messages() == [HumanMessage("sync 3"), HumanMessage("async 0"), AIMessage("async 1")]
        info = await history.store.info()
    assert (info.message_count, info.ttl, info.labels) == (3, 3600, {"user": "alice"})
    keys = Keyspace("lc").thread("opts")
    assert await raw.llen(keys.messages) == 3
    assert 0 < await raw.ttl(keys.messages) <= 3600
    async with RedisThreadRegistry(redis_url, key_prefix="lc") as registry:
        page = await registry.list_threads(labels={"user": "alice"})
    assert [t.thread_id for t in page.threads] == ["opts"]


async def test_registry_false_records_no_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    with RedisChatMessageHistory("quiet", redis_url, registry=False) as history:
        history.add_messages([HumanMessage("shh")])
    assert await raw.exists(Keyspace().registry) == 0


async def test_encrypted_history_round_trips_and_stores_only_ciphertext(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    encryption = AESGCMEncryption(keys={"k1": bytes(range(32))}, current="k1")
    async with RedisChatMessageHistory("secret", redis_url, encryption=encryption) as history:
        history.add_messages(weather_turns()[:3])
        await history.aadd_messages(weather_turns()[3:])
        assert history.messages == weather_turns()
        assert await history.aget_messages() == weather_turns()
    entries: list[bytes] = await raw.lrange(Keyspace().thread("secret").messages, 0, -1)  # type: ignore[misc]
    assert len(entries) == 5
    assert all(e.startswith(b"aesgcm1:k1:") for e in entries)
    assert not any(b"Paris" in e or b"get_weather" in e for e in entries)
    # The store with the same key reads it; LangChain-only fields were sealed with the rest.
    async with RedisChatMessageStore(redis_url, thread_id="secret", encryption=encryption) as store:
        assert [m.text for m in await store.list_messages()][-1] == "It is sunny in Paris."


async def test_a_history_on_the_caller_s_client_serves_the_async_methods(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    history = RedisChatMessageHistory("shared", redis_client=client)
    await history.aadd_messages([HumanMessage("hi")])
    assert await history.aget_messages() == [HumanMessage("hi")]
    with pytest.raises(RuntimeError, match=r"redis_client=.*only the async methods.*pass redis_url"):
        _ = history.messages
    await history.aclose()
    assert await client.ping()  # the caller's client stays open
    await client.aclose()


def test_sync_calls_from_many_threads_share_the_one_loop_thread(redis_url: str) -> None:
    with RedisChatMessageHistory.factory(redis_url) as factory:

        def turn(n: int) -> None:
            history = factory(f"user_{n % 4}")
            history.add_messages([HumanMessage(f"q{n}"), AIMessage(f"a{n}")])

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(turn, range(40)))
        assert len(loop_threads()) == 1
        for user in range(4):
            texts = [m.content for m in factory(f"user_{user}").messages]
            assert sorted(texts[0::2], key=lambda t: int(str(t)[1:])) == [f"q{n}" for n in range(user, 40, 4)]
            assert [f"a{str(q)[1:]}" for q in texts[0::2]] == texts[1::2]  # each turn stored whole
    assert not loop_threads()


def test_close_stops_the_loop_thread_and_a_dropped_history_stops_it_too(redis_url: str) -> None:
    before = loop_threads()
    history = RedisChatMessageHistory("closing", redis_url)
    history.add_messages([HumanMessage("one")])
    (started,) = loop_threads() - before
    history.close()
    assert not started.is_alive()
    with pytest.raises(RuntimeError, match=r"closed"):
        history.add_messages([HumanMessage("two")])

    dropped = RedisChatMessageHistory("dropped", redis_url)
    assert dropped.messages == []
    (started,) = loop_threads() - before
    del dropped
    gc.collect()
    wait_until(lambda: not started.is_alive(), "the dropped history's loop thread to end")


def test_a_factory_lives_as_long_as_its_histories(redis_url: str) -> None:
    before = loop_threads()
    history = RedisChatMessageHistory.factory(redis_url)("orphan")  # the factory itself is not kept
    gc.collect()
    history.add_messages([HumanMessage("still works")])
    assert history.messages == [HumanMessage("still works")]
    (started,) = loop_threads() - before
    del history
    gc.collect()
    wait_until(lambda: not started.is_alive(), "the dropped factory's loop thread to end")


async def test_close_after_async_use_says_to_use_aclose(redis_url: str) -> None:
    history = RedisChatMessageHistory("mixed", redis_url)
    await history.aadd_messages([HumanMessage("async")])
    assert history.messages == [HumanMessage("async")]
    with pytest.raises(RuntimeError, match=r"await aclose\(\)"):
        history.close()
    assert not loop_threads()  # the sync side was closed all the same
    await history.aclose()
    history.close()  # nothing is left open now


def test_errors_name_the_argument(redis_url: str) -> None:
    with pytest.raises(
        TypeError, match=r"RedisChatMessageHistory\(\) got an unexpected keyword argument 'max_message'"
    ):
        RedisChatMessageHistory("t", redis_url, max_message=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"RedisChatMessageHistoryFactory\(\) got an unexpected keyword argument 'x'"):
        RedisChatMessageHistory.factory(redis_url, x=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"max_messages must be at least 1"):
        RedisChatMessageHistory("t", redis_url, max_messages=0)
    with pytest.raises(ValueError, match=r"ttl must be a positive number"):
        RedisChatMessageHistory("t", redis_url, ttl=-1)
    with pytest.raises(ValueError, match=r"thread_id must be a non-empty str"):
        RedisChatMessageHistory("", redis_url)
    with RedisChatMessageHistory.factory(redis_url) as factory:
        with pytest.raises(TypeError, match=r"thread_id must be a str"):
            factory(7)  # type: ignore[arg-type]
        history = factory("t")
        with pytest.raises(TypeError, match=r"messages must be a sequence of LangChain messages, got HumanMessage"):
            history.add_messages(HumanMessage("hi"))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"messages\[1\] must be a LangChain BaseMessage, got str"):
            history.add_messages([HumanMessage("hi"), "hello"])  # type: ignore[list-item]
        with pytest.raises(ValueError, match=r"messages\[0\]: LangChain message type 'function' has no"):
            history.add_messages([FunctionMessage(content="5", name="add")])
        assert history.messages == []  # a refused batch stores nothing


async def test_an_unreachable_server_is_the_store_s_error_on_both_sides() -> None:
    password_url = "redis://user:s3cret@127.0.0.1:1/0"  # nothing listens on port 1
    async with RedisChatMessageHistory("t", password_url, retry=Retry(NoBackoff(), 0)) as history:
        with pytest.raises(RedisUnavailableError, match=r"127\.0\.0\.1:1") as sync_error:
            history.add_messages([HumanMessage("hi")])
        with pytest.raises(RedisUnavailableError, match=r"127\.0\.0\.1:1") as async_error:
            await history.aget_messages()
    assert "s3cret" not in str(sync_error.value) + str(async_error.value)


# -- RunnableWithMessageHistory and an agent on one thread ------------------------------------


def with_history(runnable: Runnable[Any, Any], get_session_history: Any) -> RunnableWithMessageHistory:
    with warnings.catch_warnings():
        # Deprecated since langchain-core 1.3.3 (LangGraph persistence replaces it), yet it is
        # still how a BaseChatMessageHistory is used; the warning is expected, not news.
        warnings.filterwarnings(
            "ignore", message="RunnableWithMessageHistory is deprecated", category=DeprecationWarning
        )
        return RunnableWithMessageHistory(runnable, get_session_history)


class SeeingModel:
    """A fake LangChain chat model that keeps what it was sent: the proof of what the chain saw."""

    def __init__(self, *replies: AIMessage | str) -> None:
        self.requests: list[list[BaseMessage]] = []
        self.model = GenericFakeChatModel(messages=iter(replies))

    def _record(self, messages: Any) -> Any:
        self.requests.append(list(messages))
        return messages

    def runnable(self) -> Runnable[Any, Any]:
        return RunnableLambda(self._record) | self.model


async def chain_turn(chain: RunnableWithMessageHistory, thread_id: str, given: Any, mode: str) -> BaseMessage:
    config: Any = {"configurable": {"session_id": thread_id}}
    if mode == "async":
        return await chain.ainvoke(given, config=config)
    # invoke is sync: LangChain calls the history's sync methods (here inside a running loop).
    return chain.invoke(given, config=config)


async def langchain_weather_conversation(redis_url: str, thread_id: str, mode: str) -> None:
    """Two LangChain turns: a tool call, then the tool's result and the final answer."""
    call = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}])
    model = SeeingModel(call, "It is sunny in Paris.")
    async with RedisChatMessageHistory.factory(redis_url) as histories:
        chain = with_history(model.runnable(), histories)
        first = await chain_turn(chain, thread_id, "Weather in Paris?", mode)
        assert isinstance(first, AIMessage)
        assert first.tool_calls[0]["id"] == "call_1"
        tool_result = [ToolMessage("sunny", tool_call_id="call_1", name="get_weather")]
        assert (await chain_turn(chain, thread_id, tool_result, mode)).content == "It is sunny in Paris."
    assert [type(m).__name__ for m in model.requests[1]] == ["HumanMessage", "AIMessage", "ToolMessage"]


def assert_agent_saw_the_langchain_turns(client: Any) -> None:
    sent = client.recorder.requests[0]
    call = next(c for m in sent for c in m.contents if c.type == "function_call")
    result = next(c for m in sent for c in m.contents if c.type == "function_result")
    assert (call.call_id, call.name, call.arguments) == ("call_1", "get_weather", {"city": "Paris"})
    assert (result.call_id, str(result.result)) == ("call_1", "sunny")
    assert "It is sunny in Paris." in [m.text for m in sent if role_of(m) == "assistant"]


async def langchain_sees_the_agent_turns(redis_url: str, thread_id: str, mode: str, earlier: list[str]) -> None:
    """A LangChain turn after the agent's: its model is sent every stored turn, tool call included."""
    model = SeeingModel("You are Alice.")
    async with RedisChatMessageHistory.factory(redis_url) as histories:
        chain = with_history(model.runnable(), histories)
        assert (await chain_turn(chain, thread_id, "What is my name?", mode)).content == "You are Alice."
    (seen,) = model.requests
    assert [type(m).__name__ for m in seen] == [
        *["HumanMessage", "AIMessage"],
        *["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"],
        "HumanMessage",
    ]
    assert [m.content for m in seen if isinstance(m, HumanMessage)] == [*earlier, "What is my name?"]
    assert seen[1].content == "seen 1: My name is Alice."
    ai_call, tool_result = seen[3], seen[4]
    assert isinstance(ai_call, AIMessage)
    assert isinstance(tool_result, ToolMessage)
    assert ai_call.tool_calls == [{"name": "add", "args": {"a": 2, "b": 3}, "id": "call_2", "type": "tool_call"}]
    assert (tool_result.tool_call_id, tool_result.content, tool_result.status) == ("call_2", "5", "success")
    assert seen[5].content == "tool call_2 returned 5"


AGENT_TURNS = ["My name is Alice.", 'call add {"a": 2, "b": 3}']


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def legacy_agent_turns(redis_url: str, thread_id: str, texts: list[str]) -> tuple[list[str], Any]:
    """Turns of a legacy agent on ``AgentThread(message_store=RedisChatMessageStore(thread_id=...))``."""
    from agent_framework import AgentThread, ai_function  # pyright: ignore[reportAttributeAccessIssue]

    client = ScriptedChatClient()
    agent = make_agent(client, tools=[ai_function(add)])
    async with RedisChatMessageStore(redis_url, thread_id=thread_id) as store:
        thread = AgentThread(message_store=store)
        return [(await agent.run(text, thread=thread)).text for text in texts], client


async def current_agent_turns(redis_url: str, thread_id: str, texts: list[str]) -> tuple[list[str], Any]:
    """Turns of a 1.x agent on a ``RedisChatHistoryProvider`` session whose id is the thread id."""
    from agent_framework import tool

    from agent_framework_redis_store import RedisChatHistoryProvider

    client = ScriptedChatClient()
    async with RedisChatHistoryProvider(redis_url) as provider:
        agent = make_agent(client, context_providers=[provider], tools=[tool(add)])
        session = agent.create_session(session_id=thread_id)
        return [(await agent.run(text, session=session)).text for text in texts], client


async def langchain_then_agent_then_langchain(redis_url: str, mode: str, agent_turns: Any) -> None:
    await langchain_weather_conversation(redis_url, "lc_first", mode)

    replies, client = await agent_turns(redis_url, "lc_first", ["What did we talk about?"])
    # The scripted model lists every user text it was sent: LangChain's turn is among them.
    assert replies == ["seen 2: Weather in Paris? | What did we talk about?"]
    assert_agent_saw_the_langchain_turns(client)

    model = SeeingModel("bye")
    async with RedisChatMessageHistory.factory(redis_url) as histories:
        await chain_turn(with_history(model.runnable(), histories), "lc_first", "Thanks!", mode)
    assert [type(m).__name__ for m in model.requests[0]] == [
        *["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"],
        *["HumanMessage", "AIMessage"],
        "HumanMessage",
    ]
    assert model.requests[0][5].content == "seen 2: Weather in Paris? | What did we talk about?"


async def agent_then_langchain_then_agent(redis_url: str, mode: str, agent_turns: Any) -> None:
    replies, _ = await agent_turns(redis_url, "agent_first", AGENT_TURNS)
    assert replies == ["seen 1: My name is Alice.", "tool call_2 returned 5"]

    await langchain_sees_the_agent_turns(redis_url, "agent_first", mode, AGENT_TURNS)

    replies, _ = await agent_turns(redis_url, "agent_first", ["And now?"])
    assert replies == ['seen 4: My name is Alice. | call add {"a": 2, "b": 3} | What is my name? | And now?']


@pytest.mark.legacy
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_langchain_conversation_continues_in_a_legacy_agent_thread_and_back(redis_url: str, mode: str) -> None:
    await langchain_then_agent_then_langchain(redis_url, mode, legacy_agent_turns)


@pytest.mark.legacy
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_legacy_agent_thread_continues_in_langchain_and_back(redis_url: str, mode: str) -> None:
    await agent_then_langchain_then_agent(redis_url, mode, legacy_agent_turns)


@pytest.mark.current
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_langchain_conversation_continues_in_a_session_and_back(redis_url: str, mode: str) -> None:
    await langchain_then_agent_then_langchain(redis_url, mode, current_agent_turns)


@pytest.mark.current
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_session_continues_in_langchain_and_back(redis_url: str, mode: str) -> None:
    await agent_then_langchain_then_agent(redis_url, mode, current_agent_turns)
