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


async def test_prune_and_delete_leave_an_index_entry_that_names_another_workflow(
    cluster_url: str, cluster_raw: RedisCluster
) -> None:
    index = Keyspace().checkpoint_index
    async with RedisCheckpointStorage(cluster_url, cluster=True) as storage:
        saved = [make_checkpoint("refund", second=s) for s in range(3)]
        for checkpoint in saved:
            await storage.save(checkpoint)
        # As if these ids were being saved under another workflow right now (its index entry comes first).
        for checkpoint in saved[:2]:
            await cluster_raw.hset(index, checkpoint.checkpoint_id, "audit")  # type: ignore[misc]
        assert await storage.prune("refund", 1) == [c.checkpoint_id for c in saved[:2]]
        for checkpoint in saved[:2]:
            assert await cluster_raw.hget(index, checkpoint.checkpoint_id) == b"audit"  # type: ignore[misc]
        await cluster_raw.hset(index, saved[2].checkpoint_id, "refund")  # type: ignore[misc]
        assert await storage.delete(saved[2].checkpoint_id) is True
        assert await cluster_raw.hget(index, saved[2].checkpoint_id) is None  # type: ignore[misc]


async def test_operations_and_rekey_on_a_cluster(cluster_url: str, cluster_raw: RedisCluster) -> None:
    from agent_framework_redis_store import AESGCMEncryption, rekey_prefix

    old = AESGCMEncryption({"k1": b"1" * 32}, current="k1")
    new = AESGCMEncryption({"k2": b"2" * 32, "k1": b"1" * 32}, current="k2")
    index = Keyspace("ops").checkpoint_index
    async with RedisCheckpointStorage(cluster_url, cluster=True, key_prefix="ops", encryption=old) as storage:
        refund = [await storage.save(make_checkpoint("refund", second=s)) for s in range(4)]
        audit = [await storage.save(make_checkpoint("audit", second=s)) for s in range(2)]
        assert [(w.workflow_name, w.checkpoints) for w in await storage.workflows()] == [("audit", 2), ("refund", 4)]
        page = await storage.checkpoint_page("refund", limit=3)
        assert [c.checkpoint_id for c in page.checkpoints] == refund[:0:-1]
        info = await storage.checkpoint_info(refund[0])
        assert info is not None
        assert (info.key_id, info.details) == ("k1", True)
        assert await storage.prune("refund", 1) == refund[:3]
        assert sorted(k.decode() for k in await cluster_raw.hkeys(index)) == sorted([refund[3], *audit])  # type: ignore[misc]
        await cluster_raw.delete(*storage.workflow_keys("audit").owned)  # as the TTL would
        assert sorted(await storage.sweep_index()) == sorted(audit)
        assert (await storage.stats()).to_dict() == {
            "key_prefix": "ops",
            "workflows": 1,
            "checkpoints": 1,
            "index_entries": 1,
        }
    progress = await rekey_prefix(cluster_raw, new, key_prefix="ops")
    assert (progress.checkpoints_rekeyed, progress.skipped) == (1, ())
    async with RedisCheckpointStorage(
        cluster_url, cluster=True, key_prefix="ops", encryption=AESGCMEncryption({"k2": b"2" * 32}, current="k2")
    ) as rekeyed:
        latest = await rekeyed.get_latest(workflow_name="refund")
        assert latest is not None
        assert latest.checkpoint_id == refund[3]


async def test_keep_last_holds_under_concurrent_saves_on_a_cluster(cluster_url: str, cluster_raw: RedisCluster) -> None:
    import asyncio

    keys = Keyspace("race").workflow("wf")
    async with (
        RedisCheckpointStorage(cluster_url, cluster=True, key_prefix="race", keep_last=3) as one,
        RedisCheckpointStorage(cluster_url, cluster=True, key_prefix="race", keep_last=3) as two,
    ):
        observed: list[int] = []
        # The observer's reads one at a time: redis-py's async cluster client can race opening
        # connections for concurrent first commands, and the observer's concurrency is not under test.
        observing = asyncio.Lock()

        async def save(storage: RedisCheckpointStorage, second: int) -> None:
            await storage.save(make_checkpoint("wf", second=second))
            async with observing:
                timeline = await cluster_raw.zcard(keys.timeline)  # type: ignore[misc]
                bodies = await cluster_raw.hlen(keys.checkpoints)  # type: ignore[misc]
            observed.append(max(timeline, bodies))

        await asyncio.gather(*(save(one if s % 2 else two, s) for s in range(30)))
        assert len(observed) == 30
        assert max(observed) <= 3
        kept = await one.list_checkpoints(workflow_name="wf")
    assert [c.timestamp[-8:-6] for c in kept] == ["27", "28", "29"]
    # Once every save has returned, the index (another slot, trimmed beside the script) holds the kept ones only.
    index_ids: Any = await cluster_raw.hkeys(Keyspace("race").checkpoint_index)  # type: ignore[misc]
    assert sorted(index_ids) == sorted(c.checkpoint_id.encode() for c in kept)


def test_the_checkpoints_cli_on_a_cluster(cluster_url: str) -> None:
    import asyncio

    from ..test_cli_threads import cli_json

    async def main() -> list[str]:
        async with RedisCheckpointStorage(cluster_url, cluster=True, key_prefix="cli") as storage:
            for name in ("a", "b", "c"):  # three workflows: most likely on more than one master
                await storage.save(make_checkpoint(name, second=1))
            return [await storage.save(make_checkpoint("refund", second=s)) for s in range(3)]

    ids = asyncio.run(main())
    where = ("--cluster", "checkpoints", "--key-prefix", "cli")
    listed = cli_json(cluster_url, *where, "list")
    assert [(w["workflow_name"], w["checkpoints"]) for w in listed["workflows"]] == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
        ("refund", 3),
    ]
    page = cli_json(cluster_url, *where, "list", "--workflow", "refund", "--limit", "2")
    assert [c["checkpoint_id"] for c in page["checkpoints"]] == ids[:0:-1]
    assert cli_json(cluster_url, *where, "show", ids[0])["workflow_name"] == "refund"
    assert cli_json(cluster_url, *where, "prune", "-w", "refund", "--keep", "1", "--yes")["deleted"] == ids[:2]
    assert cli_json(cluster_url, *where, "delete", ids[2], "--yes") == {"deleted": 1}
    assert cli_json(cluster_url, *where, "stats") == {
        "key_prefix": "cli",
        "workflows": 3,
        "checkpoints": 3,
        "index_entries": 3,
    }
