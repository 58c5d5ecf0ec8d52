"""The 1.x history provider and session store on a real 3-master Redis Cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.asyncio import RedisCluster

from agent_framework_redis_store import Keyspace, thread_key
from agent_framework_redis_store.testing import EmbeddedRedisCluster

from ..scripted import ScriptedChatClient, make_agent, user_message

pytestmark = pytest.mark.current


def texts(messages: list[Any]) -> list[str]:
    return [m.text for m in messages]


async def test_sessions_on_every_master_remember_separately_and_resume_in_a_fresh_provider(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisChatHistoryProvider

    names = [f"user{n}" for n in range(9)]
    async with RedisChatHistoryProvider(cluster_url, cluster=True) as first:
        agent = make_agent(ScriptedChatClient(), context_providers=[first])
        sessions = {name: agent.create_session(session_id=f"session-{name}") for name in names}
        for name, session in sessions.items():
            await agent.run(f"I am {name}", session=session)
        snapshots = {name: json.dumps(session.to_dict()) for name, session in sessions.items()}
    owners = {redis_cluster.node_for_key(thread_key("chat_messages", f"session-{name}")).port for name in names}
    assert len(owners) == 3  # the sessions really live on all three masters

    # Another process, through another node: only the JSON travels.
    async with RedisChatHistoryProvider(redis_cluster.urls[1], cluster=True) as second:
        agent = make_agent(ScriptedChatClient(), context_providers=[second])
        for name in names:
            restored = AgentSession.from_dict(json.loads(snapshots[name]))
            answer = await agent.run("Who am I?", session=restored)
            assert answer.text == f"seen 2: I am {name} | Who am I?"


async def test_a_retried_save_and_a_replayed_transcript_are_stored_once(cluster_url: str) -> None:
    from agent_framework import Message

    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(cluster_url, cluster=True) as provider:
        turn = [user_message("question"), Message(role="assistant", contents=["answer"])]
        await provider.save_messages("retry", turn)
        await provider.save_messages("retry", turn)  # the reply of the first was lost, say
        # A client that sends the whole transcript again with one new message.
        await provider.save_messages("retry", [*turn, user_message("follow-up")])
        assert texts(await provider.get_messages("retry")) == ["question", "answer", "follow-up"]


async def test_max_messages_and_ttl_cover_every_key_of_the_session(cluster_url: str, cluster_raw: RedisCluster) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(cluster_url, cluster=True, max_messages=3, ttl=100) as provider:
        agent = make_agent(ScriptedChatClient(), context_providers=[provider])
        session = agent.create_session(session_id="window")
        for text in ["one", "two", "three"]:
            await agent.run(text, session=session)
        assert texts(await provider.get_messages("window")) == ["seen 2: one | two", "three", "seen 2: two | three"]
        for key in (thread_key("chat_messages", "window"), Keyspace("chat_messages").thread("window").fingerprints):
            assert 99_000 < await cluster_raw.pttl(key) <= 100_000


async def test_session_store_keeps_whole_sessions_beside_their_messages(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore

    async with RedisChatHistoryProvider(cluster_url, cluster=True) as provider:
        store = RedisSessionStore(redis_client=provider.redis_client, ttl=60)
        agent = make_agent(ScriptedChatClient(), context_providers=[provider])
        session = agent.create_session(session_id="together")
        session.state["profile"] = {"name": "Alice"}
        await agent.run("hi", session=session)
        await store.set("together", session)

    # Another instance with its own cluster client.
    async with (
        RedisSessionStore(redis_cluster.urls[2], cluster=True) as other,
        RedisChatHistoryProvider(redis_cluster.urls[2], cluster=True) as provider,
    ):
        restored = await other.get("together")
        assert restored is not None
        assert restored.state["profile"] == {"name": "Alice"}
        agent = make_agent(ScriptedChatClient(), context_providers=[provider])
        answer = await agent.run("again", session=restored)
        assert answer.text == "seen 2: hi | again"
        await other.delete("together")
        assert await other.get("together") is None
    # The snapshot shares the session's slot, hence its node.
    assert redis_cluster.node_for_key(
        Keyspace("chat_messages").thread("together").session
    ) is redis_cluster.node_for_key(thread_key("chat_messages", "together"))
