"""RedisCheckpointStorage: workflow checkpoints in Redis, in both framework generations."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    GENERATION,
    AESGCMEncryption,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    DecryptionError,
    Keyspace,
    RedisCheckpointStorage,
    RedisStoreError,
)

from .checkpoint_workflow import refund_workflow

CURRENT = GENERATION == "current"
only_current_pickles = pytest.mark.skipif(
    not CURRENT, reason="the legacy framework stores checkpoints as plain JSON: it pickles nothing"
)

# The types the 1.x restricted unpickler may build beyond its safe set (as FileCheckpointStorage takes them).
ALLOWED = [f"{__name__}:NoDeepcopy", f"{__name__}:Tripwire"]


# -- checkpoints of either generation -------------------------------------------------------


def make_checkpoint(workflow: str, *, second: int = 0, state: dict[str, Any] | None = None, **fields: Any) -> Any:
    """A checkpoint of ``workflow`` stamped ``second`` seconds into 2025, in the installed generation."""
    from agent_framework import WorkflowCheckpoint

    fields.setdefault("timestamp", f"2025-01-01T00:00:{second:02d}+00:00")
    if CURRENT:
        return WorkflowCheckpoint(workflow_name=workflow, graph_signature_hash="graph", state=state or {}, **fields)
    return WorkflowCheckpoint(workflow_id=workflow, shared_state=state or {}, **fields)  # type: ignore[call-arg]


def state_of(checkpoint: Any) -> dict[str, Any]:
    return checkpoint.state if CURRENT else checkpoint.shared_state


class NoDeepcopy:
    """Pickles, but refuses deepcopy (a handle-like value an executor may keep)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __deepcopy__(self, memo: object) -> NoDeepcopy:
        raise TypeError("NoDeepcopy refuses deepcopy")


UNPICKLED: list[int] = []


class Tripwire:
    """Records every time pickle builds one: proves whether a load unpickled anything."""

    def __init__(self) -> None:
        self.armed = True  # a state to restore, so unpickling calls __setstate__

    def __setstate__(self, state: dict[str, Any]) -> None:
        UNPICKLED.append(1)
        self.__dict__.update(state)


@pytest.fixture
async def storage(redis_url: str) -> AsyncIterator[RedisCheckpointStorage]:
    async with RedisCheckpointStorage(redis_url, allowed_checkpoint_types=ALLOWED) as storage:
        yield storage


async def load(storage: RedisCheckpointStorage, checkpoint_id: str) -> Any:
    """The installed generation's load."""
    return await (storage.load(checkpoint_id) if CURRENT else storage.load_checkpoint(checkpoint_id))


# -- the framework's expectations of a checkpoint storage ----------------------------------


async def test_save_returns_the_id_and_load_returns_an_equal_caller_owned_copy(storage: RedisCheckpointStorage) -> None:
    original = make_checkpoint("wf", state={"counter": 1, "nested": {"items": [1, 2]}}, iteration_count=3)
    assert await storage.save(original) == original.checkpoint_id
    first, second = await load(storage, original.checkpoint_id), await load(storage, original.checkpoint_id)
    assert first is not original
    assert first is not second
    assert first.to_dict() == original.to_dict()
    state_of(first)["nested"]["items"].append(3)  # nested mutation stays in the caller's copy
    state_of(first)["counter"] = 99
    assert state_of(await load(storage, original.checkpoint_id)) == {"counter": 1, "nested": {"items": [1, 2]}}


async def test_a_save_snapshots_the_checkpoint_as_it_is_at_the_call(storage: RedisCheckpointStorage) -> None:
    original = make_checkpoint("wf", state={"nested": {"items": [1]}})
    await storage.save(original)
    state_of(original)["nested"]["items"].append(2)
    state_of(original)["added"] = True
    assert state_of(await load(storage, original.checkpoint_id)) == {"nested": {"items": [1]}}


async def test_get_latest_and_list_return_caller_owned_copies(storage: RedisCheckpointStorage) -> None:
    await storage.save(make_checkpoint("wf", second=1, state={"n": {"v": [1]}}))
    latest = await storage.get_latest(workflow_name="wf")
    assert latest is not None
    state_of(latest)["n"]["v"].append(2)
    listed = await storage.list_checkpoints(workflow_name="wf")
    assert [state_of(c) for c in listed] == [{"n": {"v": [1]}}]
    state_of(listed[0])["n"]["v"].append(3)
    again = await storage.get_latest(workflow_name="wf")
    assert again is not None
    assert state_of(again) == {"n": {"v": [1]}}


@only_current_pickles
async def test_a_value_that_pickles_but_refuses_deepcopy_round_trips(storage: RedisCheckpointStorage) -> None:
    original = make_checkpoint("wf", state={"handle": NoDeepcopy(7)})
    await storage.save(original)
    loaded = await storage.load(original.checkpoint_id)
    assert isinstance(state_of(loaded)["handle"], NoDeepcopy)
    assert state_of(loaded)["handle"].value == 7
    assert state_of(loaded)["handle"] is not state_of(original)["handle"]


@only_current_pickles
async def test_a_type_the_restricted_unpickler_refuses_is_refused_at_save(redis_url: str, raw: Any) -> None:
    from agent_framework import WorkflowCheckpointException

    async with RedisCheckpointStorage(redis_url) as strict:  # NoDeepcopy not allowed, as FileCheckpointStorage
        with pytest.raises(WorkflowCheckpointException, match="blocked for type"):
            await strict.save(make_checkpoint("wf", state={"handle": NoDeepcopy(1)}))
    assert await raw.keys("*") == []


async def test_listing_filters_by_workflow_name_and_unknown_names_are_empty(storage: RedisCheckpointStorage) -> None:
    a1, a2, b1 = make_checkpoint("a", second=1), make_checkpoint("a", second=2), make_checkpoint("b", second=3)
    for checkpoint in (a1, a2, b1):
        await storage.save(checkpoint)
    assert await storage.list_checkpoint_ids(workflow_name="a") == [a1.checkpoint_id, a2.checkpoint_id]
    assert await storage.list_checkpoint_ids("a") == [a1.checkpoint_id, a2.checkpoint_id]  # legacy: workflow_id
    assert [c.checkpoint_id for c in await storage.list_checkpoints(workflow_name="b")] == [b1.checkpoint_id]
    assert await storage.list_checkpoint_ids(workflow_name="nobody") == []
    assert await storage.list_checkpoints(workflow_name="nobody") == []
    assert await storage.get_latest(workflow_name="nobody") is None
    # Legacy: no workflow id lists every workflow's.
    assert sorted(await storage.list_checkpoint_ids()) == sorted(c.checkpoint_id for c in (a1, a2, b1))
    assert len(await storage.list_checkpoints()) == 3
    with pytest.raises(ValueError, match="disagree"):
        await storage.list_checkpoint_ids("a", workflow_name="b")


async def test_a_missing_id_is_an_error_for_load_and_none_for_load_checkpoint(storage: RedisCheckpointStorage) -> None:
    with pytest.raises(CheckpointNotFoundError, match="no-such-id"):
        await storage.load("no-such-id")
    if CURRENT:
        from agent_framework import WorkflowCheckpointException

        with pytest.raises(WorkflowCheckpointException):  # what the 1.x protocol names
            await storage.load("no-such-id")
    assert await storage.load_checkpoint("no-such-id") is None


async def test_delete_removes_body_index_and_timeline(storage: RedisCheckpointStorage, raw: Any) -> None:
    kept, gone = make_checkpoint("wf", second=1), make_checkpoint("wf", second=2)
    await storage.save(kept)
    await storage.save_checkpoint(gone)  # the legacy spelling
    assert await storage.delete(gone.checkpoint_id) is True
    assert await storage.delete_checkpoint(gone.checkpoint_id) is False
    assert await storage.load_checkpoint(gone.checkpoint_id) is None
    assert await storage.list_checkpoint_ids(workflow_name="wf") == [kept.checkpoint_id]
    latest = await storage.get_latest(workflow_name="wf")
    assert latest is not None
    assert latest.checkpoint_id == kept.checkpoint_id
    keys = storage.workflow_keys("wf")
    assert await raw.hkeys(keys.checkpoints) == [kept.checkpoint_id.encode()]
    assert await raw.hkeys(Keyspace().checkpoint_index) == [kept.checkpoint_id.encode()]


async def test_latest_is_by_timestamp_and_ties_go_by_save_order(storage: RedisCheckpointStorage) -> None:
    late, early = make_checkpoint("wf", second=30), make_checkpoint("wf", second=10)
    await storage.save(late)
    await storage.save(early)  # saved after, but older
    tie_a, tie_b = make_checkpoint("wf", second=40), make_checkpoint("wf", second=40)
    await storage.save(tie_b)
    await storage.save(tie_a)
    order = [early, late, tie_b, tie_a]
    assert await storage.list_checkpoint_ids(workflow_name="wf") == [c.checkpoint_id for c in order]
    latest = await storage.get_latest(workflow_id="wf")  # either spelling
    assert latest is not None
    assert latest.checkpoint_id == tie_a.checkpoint_id


async def test_iter_checkpoints_pages_both_ways_and_skips_what_is_deleted_meanwhile(
    storage: RedisCheckpointStorage,
) -> None:
    saved = [make_checkpoint("wf", second=i) for i in range(7)]
    for checkpoint in saved:
        await storage.save(checkpoint)
    ids = [c.checkpoint_id for c in saved]
    newest = [c.checkpoint_id async for c in storage.iter_checkpoints("wf", page_size=3)]
    assert newest == ids[::-1]
    seen: list[str] = []
    async for checkpoint in storage.iter_checkpoints("wf", newest_first=False, page_size=2):
        seen.append(checkpoint.checkpoint_id)
        if len(seen) == 2:  # between pages: the entry the next page starts after, and one ahead
            await storage.delete(ids[1])
            await storage.delete(ids[3])
    assert seen == [ids[0], ids[1], ids[2], ids[4], ids[5], ids[6]]


# -- a real workflow, paused for a person and resumed by another storage instance ----------


async def test_a_workflow_paused_for_a_person_resumes_from_its_latest_checkpoint_in_a_new_instance(
    redis_url: str,
) -> None:
    encryption = AESGCMEncryption({"k1": os.urandom(32)}, current="k1")
    async with RedisCheckpointStorage(redis_url, encryption=encryption, compression="zlib") as first:
        workflow = refund_workflow(first)
        paused = await workflow.run("order 17")
        (request,) = paused.get_request_info_events()
        assert request.data == "draft refund for order 17"
        name = "refund" if CURRENT else workflow.id  # legacy checkpoints name the workflow instance
    del workflow, first  # the process that drafted is gone

    async with RedisCheckpointStorage(redis_url, encryption=encryption, compression="zlib") as second:
        latest = await second.get_latest(workflow_name=name)
        assert latest is not None
        assert list(latest.pending_request_info_events) == [request.request_id]
        resumed = refund_workflow(second)
        if CURRENT:
            done = await resumed.run(
                checkpoint_id=latest.checkpoint_id, checkpoint_storage=second, responses={request.request_id: "ok"}
            )
        else:
            restored = await resumed.run(checkpoint_id=latest.checkpoint_id, checkpoint_storage=second)
            assert [e.request_id for e in restored.get_request_info_events()] == [request.request_id]
            done = await resumed.send_responses({request.request_id: "ok"})
        assert done.get_outputs() == ["draft refund for order 17: ok"]  # the draft made before the pause
        assert len(await second.list_checkpoint_ids(workflow_name=name)) > len(paused.get_request_info_events())


@only_current_pickles
async def test_workflow_checkpoints_read_back_as_file_checkpoint_storage_reads_them(
    storage: RedisCheckpointStorage, tmp_path: Any
) -> None:
    from agent_framework import FileCheckpointStorage
    from agent_framework._workflows._checkpoint_encoding import encode_checkpoint_value

    await refund_workflow(storage).run("order 18")
    files = FileCheckpointStorage(tmp_path)
    listed = await storage.list_checkpoints(workflow_name="refund")
    assert listed
    for checkpoint in listed:
        await files.save(checkpoint)
        from_file = await files.load(checkpoint.checkpoint_id)
        assert encode_checkpoint_value(from_file.to_dict()) == encode_checkpoint_value(checkpoint.to_dict())


# -- retention, TTL, compression -------------------------------------------------------------


async def test_keep_last_holds_under_concurrent_saves_from_two_instances(redis_url: str, raw: Any) -> None:
    keys = Keyspace().workflow("wf")
    async with (
        RedisCheckpointStorage(redis_url, keep_last=3) as one,
        RedisCheckpointStorage(redis_url, keep_last=3) as two,
    ):
        observed: list[int] = []

        async def save(storage: RedisCheckpointStorage, second: int) -> None:
            await storage.save(make_checkpoint("wf", second=second))
            observed.append(max(await raw.zcard(keys.timeline), await raw.hlen(keys.checkpoints)))

        saved = [make_checkpoint("wf", second=s) for s in range(3)]  # warm: already full
        for checkpoint in saved:
            await one.save(checkpoint)
        await asyncio.gather(*(save(one if s % 2 else two, s) for s in range(3, 43)))
        assert max(observed) <= 3
        kept = await one.list_checkpoints(workflow_name="wf")
    assert [c.timestamp[-8:-6] for c in kept] == ["40", "41", "42"]  # the newest three
    assert await raw.hlen(Keyspace().checkpoint_index) == 3
    assert await raw.zcard(keys.timeline) == await raw.hlen(keys.checkpoints) == 3


async def test_ttl_applies_to_the_workflow_and_every_save_refreshes_it(redis_url: str, raw: Any) -> None:
    keys = Keyspace().workflow("wf")
    async with RedisCheckpointStorage(redis_url, ttl=60) as storage:
        await storage.save(make_checkpoint("wf", second=1))
        await raw.pexpire(keys.checkpoints, 5_000)
        await raw.pexpire(keys.timeline, 5_000)
        await storage.save(make_checkpoint("wf", second=2))
        for key in keys.owned:
            assert 55_000 < await raw.pttl(key) <= 60_000
    async with RedisCheckpointStorage(redis_url) as forever:  # no ttl: the workflow stops expiring
        await forever.save(make_checkpoint("wf", second=3))
    assert [await raw.pttl(key) for key in keys.owned] == [-1, -1]


async def test_compression_stores_large_checkpoints_smaller(redis_url: str, raw: Any) -> None:
    text = "The customer asked for a refund of the order. " * 200
    async with RedisCheckpointStorage(redis_url, compression="zlib") as storage:
        checkpoint = make_checkpoint("wf", state={"transcript": text})
        await storage.save(checkpoint)
        stored = await raw.hget(storage.workflow_keys("wf").checkpoints, checkpoint.checkpoint_id)
        assert stored.startswith(b"~zlib:")
        assert len(stored) < len(text) / 4
        assert state_of(await load(storage, checkpoint.checkpoint_id)) == {"transcript": text}


# -- a trusted store: sealed checkpoints -------------------------------------------------------


@pytest.fixture
async def sealed(redis_url: str) -> AsyncIterator[RedisCheckpointStorage]:
    encryption = AESGCMEncryption({"k1": os.urandom(32)}, current="k1")
    async with RedisCheckpointStorage(redis_url, encryption=encryption, allowed_checkpoint_types=ALLOWED) as storage:
        yield storage


async def test_an_altered_byte_fails_with_decryption_error_before_anything_is_unpickled(
    sealed: RedisCheckpointStorage, raw: Any
) -> None:
    checkpoint = make_checkpoint("wf", state={"tripwire": Tripwire()} if CURRENT else {"v": 1})
    await sealed.save(checkpoint)
    keys = sealed.workflow_keys("wf")
    stored = await raw.hget(keys.checkpoints, checkpoint.checkpoint_id)
    assert b"tripwire" not in stored  # sealed
    UNPICKLED.clear()
    await load(sealed, checkpoint.checkpoint_id)
    assert ([1] if CURRENT else []) == UNPICKLED  # the tripwire works: an intact load builds it
    UNPICKLED.clear()
    position = len(stored) - 10
    altered = stored[:position] + bytes([stored[position] ^ 0x01]) + stored[position + 1 :]
    await raw.hset(keys.checkpoints, checkpoint.checkpoint_id, altered)
    for read in (load(sealed, checkpoint.checkpoint_id), sealed.get_latest(workflow_name="wf")):
        with pytest.raises(DecryptionError, match="altered") as caught:
            await read
        assert caught.value.key == keys.checkpoints
        assert checkpoint.checkpoint_id in str(caught.value)
    with pytest.raises(DecryptionError):
        async for _ in sealed.iter_checkpoints("wf"):
            pass
    assert await sealed.list_checkpoints(workflow_name="wf") == []  # left out, as FileCheckpointStorage does
    assert UNPICKLED == []


async def test_a_checkpoint_moved_to_another_workflow_or_id_fails_to_decrypt(
    sealed: RedisCheckpointStorage, raw: Any
) -> None:
    checkpoint = make_checkpoint("victim", state={"tripwire": Tripwire()} if CURRENT else {"v": 1})
    decoy = make_checkpoint("attacker", second=5)
    await sealed.save(checkpoint)
    await sealed.save(decoy)
    victim, attacker = sealed.workflow_keys("victim"), sealed.workflow_keys("attacker")
    stolen = await raw.hget(victim.checkpoints, checkpoint.checkpoint_id)
    UNPICKLED.clear()
    # Into the other workflow, under the decoy's id (the index already points there).
    await raw.hset(attacker.checkpoints, decoy.checkpoint_id, stolen)
    with pytest.raises(DecryptionError, match="copied"):
        await load(sealed, decoy.checkpoint_id)
    with pytest.raises(DecryptionError):
        await sealed.get_latest(workflow_name="attacker")
    # Into the other workflow under its own id, with the index entry an attacker would add.
    await raw.hset(attacker.checkpoints, checkpoint.checkpoint_id, stolen)
    await raw.hset(Keyspace().checkpoint_index, checkpoint.checkpoint_id, "attacker")
    with pytest.raises(DecryptionError):
        await load(sealed, checkpoint.checkpoint_id)
    assert UNPICKLED == []


async def test_without_encryption_a_moved_or_damaged_checkpoint_is_a_package_error_naming_its_key(
    storage: RedisCheckpointStorage, raw: Any
) -> None:
    one, two = make_checkpoint("wf", second=1), make_checkpoint("wf", second=2)
    await storage.save(one)
    await storage.save(two)
    keys = storage.workflow_keys("wf")
    await raw.hset(keys.checkpoints, two.checkpoint_id, await raw.hget(keys.checkpoints, one.checkpoint_id))
    with pytest.raises(CorruptCheckpointError, match="moved or altered") as caught:
        await load(storage, two.checkpoint_id)
    assert caught.value.key == keys.checkpoints
    assert caught.value.checkpoint_id == two.checkpoint_id
    await raw.hset(keys.checkpoints, two.checkpoint_id, b"{not json")
    with pytest.raises(CorruptCheckpointError, match=r"JSONDecodeError"):
        await storage.get_latest(workflow_name="wf")
    assert [c.checkpoint_id for c in await storage.list_checkpoints(workflow_name="wf")] == [one.checkpoint_id]


async def test_a_sealed_checkpoint_without_encryption_and_plaintext_with_it_both_fail_clearly(
    redis_url: str, sealed: RedisCheckpointStorage
) -> None:
    checkpoint = make_checkpoint("wf")
    await sealed.save(checkpoint)
    async with RedisCheckpointStorage(redis_url) as plain:
        with pytest.raises(DecryptionError, match="no encryption="):
            await plain.load_checkpoint(checkpoint.checkpoint_id)
        other = make_checkpoint("wf", second=9)
        await plain.save(other)
    with pytest.raises(DecryptionError, match="plaintext"):
        await sealed.load_checkpoint(other.checkpoint_id)


# -- options and errors ------------------------------------------------------------------------


def test_options_are_validated_naming_the_option() -> None:
    with pytest.raises(ValueError, match="keep_last"):
        RedisCheckpointStorage("redis://127.0.0.1:1", keep_last=0)
    with pytest.raises(TypeError, match="max_messages"):
        RedisCheckpointStorage("redis://127.0.0.1:1", max_messages=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="allowed_checkpoint_types"):
        RedisCheckpointStorage("redis://127.0.0.1:1", allowed_checkpoint_types="a:B")
    with pytest.raises(ValueError, match="ttl"):
        RedisCheckpointStorage("redis://127.0.0.1:1", ttl=-1)


async def test_redis_errors_are_the_package_s(redis_url: str, raw: redis.asyncio.Redis) -> None:
    keys = Keyspace().workflow("wf")
    await raw.set(keys.timeline, "not a sorted set")
    async with RedisCheckpointStorage(redis_url) as storage:
        with pytest.raises(RedisStoreError, match="timeline"):
            await storage.save(make_checkpoint("wf"))
        assert await raw.exists(keys.checkpoints) == 0  # nothing was written
    async with RedisCheckpointStorage("redis://127.0.0.1:1", socket_timeout=0.2, retry=None) as unreachable:
        with pytest.raises(RedisStoreError, match="unreachable"):
            await unreachable.get_latest(workflow_name="wf")


async def test_workflow_keys_share_one_slot_and_are_never_a_thread_s() -> None:
    from redis.crc import key_slot

    keys = Keyspace("p").workflow("a:b {c}")
    assert key_slot(keys.checkpoints.encode()) == key_slot(keys.timeline.encode())
    assert Keyspace("p").thread_id_of(keys.checkpoints) is None
    assert Keyspace("p").thread_id_of(keys.timeline) is None
    assert keys.checkpoints != Keyspace("p").thread("wf:a%3Ab").messages
