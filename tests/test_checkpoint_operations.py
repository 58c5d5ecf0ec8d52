"""RedisCheckpointStorage's operations: metadata without restoring, pages, workflows, prune, the index sweep,
stats, rekey, and that thread operations (erase, purge) leave checkpoints alone. Both generations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    CorruptCheckpointError,
    DecryptionError,
    Keyspace,
    RedisChatMessageStore,
    RedisCheckpointStorage,
    RedisThreadRegistry,
    rekey_prefix,
)

from .scripted import user_message
from .test_checkpoints import ALLOWED, CURRENT, UNPICKLED, Tripwire, make_checkpoint

K1 = AESGCMEncryption({"k1": b"1" * 32}, current="k1")
K2_AND_K1 = AESGCMEncryption({"k2": b"2" * 32, "k1": b"1" * 32}, current="k2")
K2 = AESGCMEncryption({"k2": b"2" * 32}, current="k2")


def at(second: int) -> datetime:
    return datetime(2025, 1, 1, 0, 0, second, tzinfo=UTC)


async def save_chain(storage: RedisCheckpointStorage, workflow: str, count: int) -> list[str]:
    """``count`` checkpoints of ``workflow``, one a second, each naming the one before (1.x)."""
    ids: list[str] = []
    for second in range(count):
        fields: dict[str, Any] = {"iteration_count": second}
        if CURRENT and ids:
            fields["previous_checkpoint_id"] = ids[-1]
        ids.append(await storage.save(make_checkpoint(workflow, second=second, **fields)))
    return ids


# -- metadata without restoring ---------------------------------------------------------------


async def test_checkpoint_info_reads_metadata_and_unpickles_nothing(redis_url: str, raw: Any) -> None:
    async with RedisCheckpointStorage(redis_url, allowed_checkpoint_types=ALLOWED, compression="zlib") as storage:
        first = make_checkpoint("refund", second=1, state={"tripwire": Tripwire()} if CURRENT else {"v": 1})
        await storage.save(first)
        fields: dict[str, Any] = {"iteration_count": 4, "state": {"big": "x" * 5000}}
        if CURRENT:
            fields["previous_checkpoint_id"] = first.checkpoint_id
        second = make_checkpoint("refund", second=2, **fields)
        await storage.save(second)
        UNPICKLED.clear()
        info = await storage.checkpoint_info(second.checkpoint_id)
        brief = await storage.checkpoint_info(first.checkpoint_id, details=False)
        assert await storage.checkpoint_info("no-such-id") is None
    assert info is not None
    assert brief is not None
    stored = await raw.hget(Keyspace().workflow("refund").checkpoints, second.checkpoint_id)
    assert (info.checkpoint_id, info.workflow_name, info.saved_at) == (second.checkpoint_id, "refund", at(2))
    assert info.size_bytes == len(stored) < 5000  # the stored (compressed) body
    assert (info.compressed, info.iteration_count, info.key_id, info.details) == (True, 4, None, True)
    assert info.previous_checkpoint_id == (first.checkpoint_id if CURRENT else None)
    assert info.pending_requests == 0
    assert (brief.saved_at, brief.details, brief.iteration_count) == (at(1), False, None)
    assert UNPICKLED == []  # the first one's tripwire was never built


async def test_checkpoint_info_of_a_sealed_checkpoint_authenticates_it_and_needs_the_key(
    redis_url: str, raw: Any
) -> None:
    async with RedisCheckpointStorage(redis_url, encryption=K1) as storage:
        (checkpoint_id,) = await save_chain(storage, "refund", 1)
        info = await storage.checkpoint_info(checkpoint_id)
        keys = storage.workflow_keys("refund")
    assert info is not None
    assert (info.key_id, info.details, info.iteration_count) == ("k1", True, 0)
    for lacking in (RedisCheckpointStorage(redis_url), RedisCheckpointStorage(redis_url, encryption=K2)):
        async with lacking:
            without = await lacking.checkpoint_info(checkpoint_id)
        assert without is not None
        assert (without.key_id, without.details, without.iteration_count, without.saved_at) == (
            "k1",
            False,
            None,
            at(0),
        )
    async with RedisCheckpointStorage(redis_url) as plain:
        (plain_id,) = await save_chain(plain, "plain", 1)
    async with RedisCheckpointStorage(redis_url, encryption=K1) as storage:  # metadata of plaintext: JSON only
        plain_info = await storage.checkpoint_info(plain_id)
    assert plain_info is not None
    assert (plain_info.key_id, plain_info.details, plain_info.iteration_count) == (None, True, 0)
    stored = await raw.hget(keys.checkpoints, checkpoint_id)
    await raw.hset(keys.checkpoints, checkpoint_id, stored[:-12] + bytes([stored[-12] ^ 1]) + stored[-11:])
    async with RedisCheckpointStorage(redis_url, encryption=K1) as storage:
        with pytest.raises(DecryptionError, match="altered"):
            await storage.checkpoint_info(checkpoint_id)
        await raw.hset(keys.checkpoints, checkpoint_id, b"{not json")
    async with RedisCheckpointStorage(redis_url) as plain:
        with pytest.raises(CorruptCheckpointError, match="not JSON"):
            await plain.checkpoint_info(checkpoint_id)


async def test_checkpoint_page_pages_newest_first_by_cursor_and_skips_what_is_deleted_meanwhile(
    redis_url: str,
) -> None:
    async with RedisCheckpointStorage(redis_url) as storage:
        ids = await save_chain(storage, "refund", 7)
        await save_chain(storage, "other", 2)
        first = await storage.checkpoint_page("refund", limit=3)
        assert [c.checkpoint_id for c in first.checkpoints] == ids[6:3:-1]
        assert [c.saved_at for c in first.checkpoints] == [at(6), at(5), at(4)]
        assert all(c.size_bytes > 0 and not c.details for c in first.checkpoints)
        assert first.next_cursor is not None
        await storage.delete(ids[3])  # the next page's first: gone, nothing shifts
        second = await storage.checkpoint_page("refund", limit=3, cursor=first.next_cursor)
        assert [c.checkpoint_id for c in second.checkpoints] == ids[2::-1]
        assert second.next_cursor is None
        oldest = await storage.checkpoint_page("refund", limit=10, newest_first=False)
        assert [c.checkpoint_id for c in oldest.checkpoints] == ids[:3] + ids[4:]
        assert (await storage.checkpoint_page("nothing here")).checkpoints == []
        with pytest.raises(ValueError, match="cursor"):
            await storage.checkpoint_page("refund", cursor="garbage")
        with pytest.raises(ValueError, match="limit"):
            await storage.checkpoint_page("refund", limit=0)


async def test_workflows_lists_each_workflow_with_its_count_and_newest(redis_url: str) -> None:
    async with RedisCheckpointStorage(redis_url) as storage:
        refund = await save_chain(storage, "refund", 3)
        odd = await save_chain(storage, "a:b {c} [red]", 1)
        found = await storage.workflows()
        assert [(w.workflow_name, w.checkpoints, w.latest_checkpoint_id, w.latest_saved_at) for w in found] == [
            ("a:b {c} [red]", 1, odd[0], at(0)),
            ("refund", 3, refund[2], at(2)),
        ]
        for checkpoint_id in odd:
            await storage.delete(checkpoint_id)
        assert [w.workflow_name for w in await storage.workflows()] == ["refund"]


# -- prune and the index sweep ----------------------------------------------------------------


async def test_prune_keeps_the_newest_and_a_dry_run_changes_nothing(redis_url: str, raw: Any) -> None:
    async with RedisCheckpointStorage(redis_url) as storage:
        ids = await save_chain(storage, "refund", 5)
        other = await save_chain(storage, "other", 2)
        assert await storage.prune("refund", 2, dry_run=True) == ids[:3]
        assert await storage.list_checkpoint_ids(workflow_name="refund") == ids
        assert await storage.prune("refund", 2) == ids[:3]
        assert await storage.list_checkpoint_ids(workflow_name="refund") == ids[3:]
        assert await storage.prune("refund", 2) == []
        assert await storage.load_checkpoint(ids[0]) is None
        assert sorted(k.decode() for k in await raw.hkeys(Keyspace().checkpoint_index)) == sorted(ids[3:] + other)
        assert await storage.prune("refund", 0) == ids[3:]
        assert await raw.exists(*storage.workflow_keys("refund").owned) == 0
        assert await storage.list_checkpoint_ids(workflow_name="other") == other
        with pytest.raises(ValueError, match="keep"):
            await storage.prune("other", -1)


async def test_sweep_index_removes_only_entries_whose_checkpoint_is_gone(redis_url: str, raw: Any) -> None:
    async with RedisCheckpointStorage(redis_url, ttl=600) as storage:
        expired = await save_chain(storage, "expired", 3)
        kept = await save_chain(storage, "kept", 2)
        await raw.delete(*storage.workflow_keys("expired").owned)  # as the TTL would
        index = Keyspace().checkpoint_index
        assert await raw.hlen(index) == 5
        assert sorted(await storage.sweep_index(dry_run=True)) == sorted(expired)
        assert await raw.hlen(index) == 5
        assert sorted(await storage.sweep_index()) == sorted(expired)
        assert sorted(k.decode() for k in await raw.hkeys(index)) == sorted(kept)
        assert await storage.sweep_index() == []
        assert [c.checkpoint_id for c in await storage.list_checkpoints()] == kept


# -- the rest of the prefix's operations ------------------------------------------------------


async def test_stats_count_workflows_checkpoints_and_stale_index_entries(redis_url: str, raw: Any) -> None:
    async with RedisCheckpointStorage(redis_url, key_prefix="app") as storage:
        await save_chain(storage, "refund", 3)
        await save_chain(storage, "other", 2)
        await raw.delete(*storage.workflow_keys("other").owned)  # expired
        stats = await storage.stats()
    async with RedisCheckpointStorage(redis_url, key_prefix="empty") as empty:
        nothing = await empty.stats()
    assert stats.to_dict() == {"key_prefix": "app", "workflows": 1, "checkpoints": 3, "index_entries": 5}
    assert (nothing.workflows, nothing.checkpoints, nothing.index_entries) == (0, 0, 0)


async def test_erase_and_purge_leave_workflow_checkpoints_alone(redis_url: str, raw: Any) -> None:
    async with RedisCheckpointStorage(redis_url) as storage:
        ids = await save_chain(storage, "refund", 2)
    # A thread whose id looks like a workflow's tag: still a thread's keys, never a workflow's.
    for thread_id in ("wf:refund", "refund"):
        async with RedisChatMessageStore(redis_url, thread_id=thread_id, labels={"user": "alice"}) as store:
            await store.add_messages([user_message("hi")])
    before = sorted(await raw.keys("*checkpoints*")) + sorted(await raw.keys("*timeline*"))
    async with RedisThreadRegistry(redis_url) as registry:
        receipt = await registry.erase(labels={"user": "alice"})
        assert sorted(receipt.thread_ids) == ["refund", "wf:refund"]
        assert receipt.complete
        async with RedisChatMessageStore(redis_url, thread_id="t") as store:
            await store.add_messages([user_message("old")])
        purged = await registry.purge(older_than=0)
        assert purged.purged == 1
        assert await registry.count() == 0
    assert sorted(await raw.keys("*checkpoints*")) + sorted(await raw.keys("*timeline*")) == before
    async with RedisCheckpointStorage(redis_url) as storage:
        assert await storage.list_checkpoint_ids(workflow_name="refund") == ids
        latest = await storage.get_latest(workflow_name="refund")
        assert latest is not None
        assert latest.checkpoint_id == ids[-1]


async def test_rekey_prefix_reseals_checkpoints_and_keeps_timeline_index_and_ttl(redis_url: str, raw: Any) -> None:
    async with RedisCheckpointStorage(redis_url, encryption=K1, compression="zlib", ttl=600, keep_last=10) as old:
        refund = await save_chain(old, "refund", 3)
        other = await save_chain(old, "other {x}", 1)
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=K1) as store:
        await store.add_messages([user_message("hi")])
    keys = Keyspace().workflow("refund")
    timeline_before = await raw.zrange(keys.timeline, 0, -1, withscores=True)
    index_before = await raw.hgetall(Keyspace().checkpoint_index)
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        progress = await rekey_prefix(client, K2_AND_K1)
        again = await rekey_prefix(client, K2_AND_K1)
    assert (progress.checkpoints_rekeyed, progress.entries_rekeyed, progress.skipped) == (4, 1, ())
    assert (again.checkpoints_rekeyed, again.skipped) == (0, ())
    assert await raw.zrange(keys.timeline, 0, -1, withscores=True) == timeline_before
    assert await raw.hgetall(Keyspace().checkpoint_index) == index_before
    assert 0 < await raw.pttl(keys.checkpoints) <= 600_000
    async with RedisCheckpointStorage(redis_url, encryption=K2) as new:  # the old key is gone
        assert [c.checkpoint_id for c in await new.list_checkpoints(workflow_name="refund")] == refund
        latest = await new.get_latest(workflow_name="other {x}")
        assert latest is not None
        assert latest.checkpoint_id == other[0]
        info = await new.checkpoint_info(refund[0])
        assert info is not None
        assert info.key_id == "k2"


async def test_rekey_prefix_leaves_a_checkpoint_it_cannot_decrypt_and_names_its_workflow(
    redis_url: str, raw: Any
) -> None:
    async with RedisCheckpointStorage(redis_url, encryption=K1) as old:
        ids = await save_chain(old, "refund", 2)
    keys = Keyspace().workflow("refund")
    stored = await raw.hget(keys.checkpoints, ids[0])
    damaged = stored[:-12] + bytes([stored[-12] ^ 1]) + stored[-11:]
    await raw.hset(keys.checkpoints, ids[0], damaged)
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        progress = await rekey_prefix(client, K2_AND_K1)
    assert progress.checkpoints_rekeyed == 1
    assert [key for key, _ in progress.skipped] == [keys.checkpoints]
    assert ids[0] in progress.skipped[0][1]
    assert await raw.hget(keys.checkpoints, ids[0]) == damaged  # left exactly as it was


async def test_rekey_prefix_encrypts_plaintext_checkpoints_only_when_asked(redis_url: str) -> None:
    async with RedisCheckpointStorage(redis_url) as plain:
        ids = await save_chain(plain, "refund", 2)
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        assert (await rekey_prefix(client, K2)).checkpoints_rekeyed == 0
        assert (await rekey_prefix(client, K2, encrypt_plaintext=True)).checkpoints_rekeyed == 2
    async with RedisCheckpointStorage(redis_url, encryption=K2) as sealed:
        assert await sealed.list_checkpoint_ids(workflow_name="refund") == ids
        assert len(await sealed.list_checkpoints(workflow_name="refund")) == 2
