"""Long conversations on a real Redis Cluster: group-safe trimming, windows and summaries per slot."""

from __future__ import annotations

from redis.asyncio import RedisCluster

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, RedisThreadRegistry, SummaryCompaction
from agent_framework_redis_store.testing import EmbeddedRedisCluster

from ..test_long_conversations import Summarizer, chat, continues, dicts, messages, signature, turn
from .support import thread_ids


async def test_threads_on_every_master_trim_group_safe_and_keep_a_summary(
    cluster_url: str, cluster_raw: RedisCluster, redis_cluster: EmbeddedRedisCluster
) -> None:
    # One thread per master, so every node runs the scripts.
    ids = [thread_ids(1, lambda key, n=node: redis_cluster.node_for_key(key) is n, prefix=f"n{i}")[0]
           for i, node in enumerate(redis_cluster.nodes)]  # fmt: skip
    policy = SummaryCompaction(Summarizer(), trigger_messages=6, keep_last_messages=2, background=False)
    factory = RedisChatMessageStore.factory(cluster_url, cluster=True, max_messages=7, compaction=policy)
    for thread_id in ids:
        store = factory.store(thread_id)
        await store.add_messages(messages(turn(0, split_results=True) + turn(1)))  # 5 + 4 messages
        stored = dicts(await store.transcript())
        assert len(stored) <= 7
        assert not continues(stored[0])
        assert (await store.compact(force=True)).compacted
        await store.add_messages(messages(chat(2)))
        seen = await store.list_messages()
        # Trimmed to 7 where a group starts: turn 0 kept only its answer.
        assert seen[0].text.startswith("Summary of the earlier conversation: question 1")
        summary_at = await cluster_raw.hget(Keyspace().thread(thread_id).meta, "boundary")  # type: ignore[misc]
        assert summary_at is not None
    await factory.aclose()

    # Export and import carry the summary across slots.
    async with RedisThreadRegistry(cluster_url, cluster=True) as source:
        records = [await source.export_thread(thread_id) for thread_id in ids]
    async with RedisThreadRegistry(cluster_url, cluster=True, key_prefix="copy") as target:
        for record in records:
            assert record.summary is not None
            assert await target.import_thread(record)
    for thread_id in ids:
        original = RedisChatMessageStore(cluster_url, cluster=True, thread_id=thread_id)
        copy = RedisChatMessageStore(cluster_url, cluster=True, thread_id=thread_id, key_prefix="copy")
        assert dicts(await copy.list_messages()) == dicts(await original.list_messages())
        await original.aclose()
        await copy.aclose()


async def test_a_window_reads_only_its_messages_on_the_cluster(cluster_url: str, cluster_raw: RedisCluster) -> None:
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="w", context_messages=3) as store:
        await cluster_raw.rpush(store.redis_key, b"damaged, never decoded")  # type: ignore[misc]
        await store.add_messages(messages(turn(0) + turn(1)))
        assert signature(dicts(await store.list_messages())) == ["assistant:c1_0", "tool:c1_0", "assistant:answer 1"]
