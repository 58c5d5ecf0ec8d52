"""RedisCheckpointStorage on a real 3-master Redis Cluster: a workflow's keys in one slot, the index beside."""

from __future__ import annotations

from typing import Any

from redis.asyncio import RedisCluster
from redis.crc import key_slot

from agent_framework_redis_store import Keyspace, RedisCheckpointStorage

from ..test_checkpoints import make_checkpoint


async def test_save_load_trim_and_delete_on_a_cluster(cluster_url: str, cluster_raw: RedisCluster) -> None:
    index = Keyspace().checkpoint_index
    async with RedisCheckpointStorage(cluster_url, cluster=True, keep_last=2, ttl=60) as storage:
        keys = storage.workflow_keys("refund")
        assert key_slot(keys.checkpoints.encode()) == key_slot(keys.timeline.encode())
        assert key_slot(index.encode()) != key_slot(keys.checkpoints.encode())  # so the index goes beside
        saved = [make_checkpoint("refund", second=s) for s in range(3)]
        for checkpoint in saved:
            assert await storage.save(checkpoint) == checkpoint.checkpoint_id
        ids = [c.checkpoint_id for c in saved]
        assert await storage.list_checkpoint_ids(workflow_name="refund") == ids[1:]  # keep_last=2
        index_ids: Any = await cluster_raw.hkeys(index)  # type: ignore[misc]
        assert sorted(index_ids) == sorted(i.encode() for i in ids[1:])  # the trimmed one left the index
        latest = await storage.get_latest(workflow_name="refund")
        assert latest is not None
        assert latest.checkpoint_id == ids[2]
        assert (await storage.load_checkpoint(ids[1])) is not None
        assert await storage.load_checkpoint(ids[0]) is None
        assert await storage.delete(ids[1]) is True
        assert await storage.list_checkpoint_ids() == [ids[2]]
        assert 0 < await cluster_raw.pttl(keys.timeline) <= 60_000
