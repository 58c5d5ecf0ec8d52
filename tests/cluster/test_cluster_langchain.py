"""``RedisChatMessageHistory`` on a real Redis Cluster: a thread like any other, sync and async."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from redis.asyncio import RedisCluster

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, RedisThreadRegistry
from agent_framework_redis_store.langchain import RedisChatMessageHistory


async def test_a_langchain_history_on_a_cluster_is_one_of_its_threads(
    cluster_url: str, cluster_raw: RedisCluster
) -> None:
    call = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}])
    async with RedisChatMessageHistory.factory(cluster_url, cluster=True, ttl=600, labels={"via": "langchain"}) as lc:
        for n in range(6):  # threads in several slots, so on several masters
            history = lc(f"lc_{n}")
            history.add_messages([HumanMessage(f"add 1 and 2, {n}"), call])  # sync: the loop thread's cluster client
            await history.aadd_messages([ToolMessage("3", tool_call_id="c1"), AIMessage(f"3, {n}")])
            assert history.messages == await history.aget_messages()
            assert [m.type for m in history.messages] == ["human", "ai", "tool", "ai"]

    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="lc_5") as store:
        stored = await store.list_messages()
    assert [c.type for m in stored for c in m.contents] == ["text", "function_call", "function_result", "text"]
    assert 0 < await cluster_raw.ttl(Keyspace().thread("lc_5").messages) <= 600
    async with RedisThreadRegistry(cluster_url, cluster=True) as registry:
        page = await registry.list_threads(labels={"via": "langchain"})
    assert sorted(t.thread_id for t in page.threads) == [f"lc_{n}" for n in range(6)]
