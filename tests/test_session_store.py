"""RedisSessionStore: whole 1.x sessions (state included) in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import CorruptSessionError, Keyspace

from .scripted import ScriptedChatClient, make_agent

pytestmark = pytest.mark.current


@pytest.fixture
async def sessions(redis_url: str) -> AsyncIterator[Any]:
    from agent_framework_redis_store import RedisSessionStore

    async with RedisSessionStore(redis_url) as store:
        yield store


async def test_a_suspended_session_resumes_with_its_state_in_another_instance(redis_url: str, sessions: Any) -> None:
    from agent_framework import InMemoryHistoryProvider

    from agent_framework_redis_store import RedisSessionStore

    # State-only history (the framework's in-memory provider) proves the state travels whole.
    agent = make_agent(ScriptedChatClient(), context_providers=[InMemoryHistoryProvider()])
    session = agent.create_session(session_id="conv-1")
    session.state["profile"] = {"name": "Alice", "tags": ["vip"]}
    await agent.run("remember me", session=session)
    await sessions.set("user-42", session)

    async with RedisSessionStore(redis_url) as other_instance:
        restored = await other_instance.get("user-42")
    assert restored is not None
    assert restored.session_id == "conv-1"
    assert restored.state["profile"] == {"name": "Alice", "tags": ["vip"]}
    agent = make_agent(ScriptedChatClient(), context_providers=[InMemoryHistoryProvider()])
    answer = await agent.run("who am I?", session=restored)
    assert answer.text == "seen 2: remember me | who am I?"


async def test_missing_and_deleted_ids_read_as_none(sessions: Any) -> None:
    from agent_framework import AgentSession

    assert await sessions.get("nobody") is None
    await sessions.set("gone", AgentSession(session_id="gone"))
    assert await sessions.get("gone") is not None
    await sessions.delete("gone")
    assert await sessions.get("gone") is None
    await sessions.delete("gone")  # deleting twice is fine


async def test_set_replaces_the_snapshot(sessions: Any) -> None:
    from agent_framework import AgentSession

    first, second = AgentSession(session_id="a"), AgentSession(session_id="b")
    await sessions.set("slot", first)
    await sessions.set("slot", second)
    restored = await sessions.get("slot")
    assert restored is not None
    assert restored.session_id == "b"


async def test_sliding_ttl_is_refreshed_by_reads_and_writes(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisSessionStore

    async with RedisSessionStore(redis_url, ttl=100) as store:
        await store.set("s", AgentSession(session_id="s"))
        key = Keyspace("chat_messages").thread("s").session
        assert 99_000 < await raw.pttl(key) <= 100_000
        await raw.pexpire(key, 5_000)
        assert await store.get("s") is not None
        assert 99_000 < await raw.pttl(key) <= 100_000
        await raw.pexpire(key, 1)
        for _ in range(500):  # poll with a bound rather than sleep a guess
            if not await raw.exists(key):
                break
            await asyncio.sleep(0.002)
        assert await store.get("s") is None


async def test_without_ttl_a_snapshot_never_expires(sessions: Any, raw: redis.asyncio.Redis) -> None:
    from agent_framework import AgentSession

    await sessions.set("s", AgentSession(session_id="s"))
    assert await raw.pttl(Keyspace("chat_messages").thread("s").session) == -1


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1, 2]", b'{"type": "chat_message"}', b'{"type": "session"}', b'{"session_id": 7}'],
)
async def test_a_corrupt_snapshot_names_the_session_and_is_left_alone(
    sessions: Any, raw: redis.asyncio.Redis, payload: bytes
) -> None:
    key = Keyspace("chat_messages").thread("broken/1").session
    await raw.set(key, payload)
    with pytest.raises(CorruptSessionError, match=r"session 'broken/1'") as caught:
        await sessions.get("broken/1")
    assert (caught.value.session_id, caught.value.key) == ("broken/1", key)
    assert await raw.get(key) == payload


async def test_bad_input_is_named(redis_url: str, sessions: Any, raw: redis.asyncio.Redis) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisSessionStore

    with pytest.raises(ValueError, match="session_id"):
        await sessions.get("")
    with pytest.raises(TypeError, match="session_id"):
        await sessions.set(None, AgentSession())
    with pytest.raises(TypeError, match="session must be an AgentSession"):
        await sessions.set("s", {"session_id": "s"})
    with pytest.raises(ValueError, match="ttl"):
        RedisSessionStore(redis_url, ttl=-1)
    with pytest.raises(ValueError, match="redis_client"):
        RedisSessionStore(redis_url, redis_client=raw)
    unserializable = AgentSession(session_id="s")
    unserializable.state["socket"] = object()
    with pytest.raises(TypeError, match="'s'"), pytest.warns(RuntimeWarning, match="unsupported type"):
        await sessions.set("s", unserializable)
    assert await sessions.get("s") is None
    await raw.rpush(Keyspace("chat_messages").thread("list").session, "x")
    with pytest.raises(Exception, match="not a session snapshot"):
        await sessions.get("list")


async def test_shares_the_history_providers_client_and_slot(redis_url: str) -> None:
    from redis.crc import key_slot

    from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore, thread_key

    async with RedisChatHistoryProvider(redis_url) as provider:
        store = RedisSessionStore(redis_client=provider.redis_client)
        agent = make_agent(ScriptedChatClient(), context_providers=[provider])
        session = agent.create_session(session_id="together")
        await agent.run("hi", session=session)
        await store.set(session.session_id, session)
        await store.aclose()  # borrowed client: stays open
        restored = await store.get("together")
        assert restored is not None
        answer = await agent.run("again", session=restored)
        assert answer.text == "seen 2: hi | again"
    assert key_slot(Keyspace("chat_messages").thread("together").session.encode()) == key_slot(
        thread_key("chat_messages", "together").encode()
    )
