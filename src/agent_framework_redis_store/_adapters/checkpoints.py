"""``RedisCheckpointStorage``: Agent Framework workflow checkpoints in Redis, both generations.

A checkpoint is stored exactly as the installed framework's ``FileCheckpointStorage`` writes
its file (1.x: ``encode_checkpoint_value`` of ``to_dict()``, checked at save time against the
restricted unpickler; legacy: the JSON of ``asdict``), then compressed and sealed like a
message. Per workflow name, a hash holds the bodies and a sorted set orders them (see
``Keyspace.workflow``); a prefix-wide hash maps each checkpoint id to its workflow name, so a
checkpoint loads by id alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Unpack

from .._core.cluster import is_cluster
from .._core.compat import generation
from .._core.compression import compress, decompress, is_compressed
from .._core.connection import ClientOwner, RedisClient, eviction_policy_unread, warn_if_evicting
from .._core.encryption import decrypt_entry, key_id_of
from .._core.errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    DecryptionError,
    translate_redis_errors,
)
from .._core.keyspace import WorkflowKeys, validate_thread_id
from .._core.lua import (
    CHECKPOINT_TIES,
    delete_checkpoint,
    forget_checkpoint_ids,
    latest_checkpoint,
    prune_checkpoints,
    registry_after,
    save_checkpoint,
    sweep_checkpoint_index,
)
from .._core.options import CheckpointStorageOptions, parse_options, validate_positive
from .._core.telemetry import BYTES_RECEIVED, CHECKPOINTS_TRIMMED, ENCRYPTED, current_operation, traced

if TYPE_CHECKING:
    # Type-checked against 1.x; the legacy class has the fields used here under its own names.
    from agent_framework import WorkflowCheckpoint

__all__ = ["CheckpointInfo", "CheckpointPage", "CheckpointStats", "RedisCheckpointStorage", "WorkflowSummary"]

logger = logging.getLogger("agent_framework_redis_store")

# Checkpoints read per round trip by list_checkpoints and iter_checkpoints.
_PAGE = 100
# Workflows summarized per round trip by workflows() and count_checkpoints().
_WORKFLOW_BATCH = 500


@dataclass(frozen=True)
class CheckpointInfo:
    """What Redis says about one stored checkpoint, read without restoring (or unpickling) it.

    ``saved_at`` and the order come from the workflow's timeline, ``size_bytes`` is the stored
    body (compressed and sealed as stored), ``key_id`` the encryption key it is sealed with
    (None: plaintext). The fields inside the checkpoint (``previous_checkpoint_id``,
    ``iteration_count``, ``pending_requests``) are filled only by ``checkpoint_info`` with
    ``details=True``, from the body's top-level JSON fields: it is opened (a sealed one
    authenticated first) and parsed as JSON, but no stored value is decoded or unpickled.
    """

    checkpoint_id: str
    workflow_name: str
    saved_at: datetime
    size_bytes: int
    key_id: str | None = None
    compressed: bool | None = None
    previous_checkpoint_id: str | None = None
    iteration_count: int | None = None
    pending_requests: int | None = None
    details: bool = False
    """Whether the fields inside the checkpoint were read (False: not asked, or sealed without the key)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "workflow_name": self.workflow_name,
            "saved_at": self.saved_at.isoformat(),
            "size_bytes": self.size_bytes,
            "key_id": self.key_id,
            "compressed": self.compressed,
            "previous_checkpoint_id": self.previous_checkpoint_id,
            "iteration_count": self.iteration_count,
            "pending_requests": self.pending_requests,
            "details": self.details,
        }


@dataclass(frozen=True)
class CheckpointPage:
    """One page of a workflow's checkpoints; ``next_cursor`` continues it (None: the last page)."""

    checkpoints: list[CheckpointInfo] = field(default_factory=list[CheckpointInfo])
    next_cursor: str | None = None


@dataclass(frozen=True)
class CheckpointStats:
    """Totals of a key prefix's workflow checkpoints."""

    key_prefix: str
    workflows: int
    checkpoints: int
    index_entries: int
    """Entries of the prefix's checkpoint index; more than ``checkpoints`` when some are stale
    (their workflow expired): ``sweep_index`` removes those."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "key_prefix": self.key_prefix,
            "workflows": self.workflows,
            "checkpoints": self.checkpoints,
            "index_entries": self.index_entries,
        }


@dataclass(frozen=True)
class WorkflowSummary:
    """A workflow that has checkpoints: how many, and its newest."""

    workflow_name: str
    checkpoints: int
    latest_checkpoint_id: str
    latest_saved_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "workflow_name": self.workflow_name,
            "checkpoints": self.checkpoints,
            "latest_checkpoint_id": self.latest_checkpoint_id,
            "latest_saved_at": self.latest_saved_at.isoformat(),
        }


class RedisCheckpointStorage(ClientOwner):
    """Workflow checkpoints in Redis: the framework's ``CheckpointStorage`` in either generation.

    1.x: ``save``, ``load`` (raises ``WorkflowCheckpointException`` for an unknown id),
    ``list_checkpoints``, ``list_checkpoint_ids``, ``get_latest``, ``delete``. Legacy
    (1.0.0b251223): ``save_checkpoint``, ``load_checkpoint`` (None for an unknown id),
    ``list_checkpoint_ids``, ``list_checkpoints``, ``delete_checkpoint``. Every method works in
    both; the workflow is named ``workflow_name=`` or ``workflow_id=`` alike.

    A save is one script call: the body, its place in the workflow's timeline (by timestamp,
    then save order), the ``keep_last`` trim and the TTL, atomically. ``get_latest`` and a page
    of ``iter_checkpoints`` cost the same at 10 and at 100,000 checkpoints.

    Loading a checkpoint unpickles (1.x), so its storage must be trusted: with ``encryption=``
    every checkpoint is sealed and bound to its workflow and id, and one altered or moved in
    Redis fails with ``DecryptionError`` before anything is unpickled.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Alternatively give ``host``,
            ``connection``, a ready ``redis_client``, or set ``REDIS_URL``.

    Keyword Args:
        redis_client: A ``redis.asyncio`` client to use; never closed here.
        **options: ``CheckpointStorageOptions``: ``key_prefix``, ``ttl`` (seconds after a
            workflow's last save when all its checkpoints expire), ``keep_last`` (keep the newest
            N per workflow), ``encryption``, ``compression``, ``allowed_checkpoint_types`` (1.x,
            as ``FileCheckpointStorage``'s) and the connection options.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis_client: RedisClient | None = None,
        **options: Unpack[CheckpointStorageOptions],
    ) -> None:
        self._options, connection = parse_options(type(self).__name__, options, CheckpointStorageOptions)
        self._keep_last = validate_positive(options.get("keep_last"), "keep_last")
        self._allowed_types = _allowed_types(options.get("allowed_checkpoint_types"))
        self._keyspace = self._options.keyspace
        self._open_client(redis_client, redis_url, connection)
        self._cluster = is_cluster(self._redis)

    @property
    def key_prefix(self) -> str:
        """The namespace of the keys."""
        return self._options.key_prefix

    @property
    def keep_last(self) -> int | None:
        """How many checkpoints each workflow keeps (None: all)."""
        return self._keep_last

    @property
    def ttl(self) -> float | None:
        """Seconds after a workflow's last save when its checkpoints expire, or None."""
        return self._options.ttl

    def workflow_keys(self, workflow_name: str) -> WorkflowKeys:
        """The Redis keys of a workflow's checkpoints."""
        return self._keyspace.workflow(workflow_name)

    # -- writing ---------------------------------------------------------------------------

    @traced("checkpoint.save")
    async def save(self, checkpoint: WorkflowCheckpoint) -> str:
        """Store a snapshot of ``checkpoint`` (as it is now) and return its id."""
        return await self._save(checkpoint)

    @traced("checkpoint.save")
    async def save_checkpoint(self, checkpoint: WorkflowCheckpoint) -> str:
        """Legacy spelling of ``save``."""
        return await self._save(checkpoint)

    async def _save(self, checkpoint: WorkflowCheckpoint) -> str:
        checkpoint_id, workflow_name, text = _codec().encode(checkpoint, self._allowed_types)
        keys = self._keyspace.workflow(workflow_name)
        if self._options.compression is not None:
            text = compress(text)
        if self._options.encryption is not None:
            text = self._options.encryption.encrypt(text, context=keys.body_context(checkpoint_id))
        op = current_operation()
        if op is not None:
            op.set(ENCRYPTED, self._options.encryption is not None)
            op.sent([text])
        index = self._keyspace.checkpoint_index
        call = save_checkpoint(
            keys,
            checkpoint_id=checkpoint_id,
            body=text,
            at_ms=_timestamp_ms(checkpoint.timestamp),
            ttl_ms=self._options.ttl_ms,
            keep_last=self._keep_last,
            index_key=None if self._cluster else index,
        )
        with self._redis_errors(keys.checkpoints):
            if self._cluster:
                # The index is in another slot: written first, so whatever the timeline holds is
                # found by id (a failed script leaves an entry that loads as not found).
                pipe = self._redis.pipeline(transaction=False)
                pipe.hget(index, checkpoint_id)
                pipe.hset(index, checkpoint_id, workflow_name)
                previous, _ = await pipe.execute()
                moved, _, trimmed = await call.run(self._redis)
                if trimmed:
                    await forget_checkpoint_ids(index, workflow_name, [_text(t) for t in trimmed]).run(self._redis)
                moved_from = None if previous is None else _text(previous)
                if moved_from == workflow_name:
                    moved_from = None
            else:
                moved, previous, trimmed = await call.run(self._redis)
                moved_from = _text(previous) if moved else None
            if op is not None:
                op.add(CHECKPOINTS_TRIMMED, len(trimmed))
            if moved_from is not None:
                # The same id saved under another workflow name: it now lives here only.
                await delete_checkpoint(
                    self._keyspace.workflow(moved_from), checkpoint_id=checkpoint_id, index_key=None
                ).run(self._redis)
        if eviction_policy_unread(self._redis):  # once per client, after its first write
            await warn_if_evicting(self._redis, self._where())
        return checkpoint_id

    async def delete(self, checkpoint_id: str) -> bool:
        """Delete a checkpoint; False if there is none with this id."""
        keys = await self._workflow_of(checkpoint_id)
        if keys is None:
            return False
        index = self._keyspace.checkpoint_index
        call = delete_checkpoint(keys, checkpoint_id=checkpoint_id, index_key=None if self._cluster else index)
        with self._redis_errors(keys.checkpoints):
            existed = await call.run(self._redis)
            if self._cluster:
                await forget_checkpoint_ids(index, keys.workflow_name, [checkpoint_id]).run(self._redis)
        return bool(existed)

    async def delete_checkpoint(self, checkpoint_id: str) -> bool:
        """Legacy spelling of ``delete``."""
        return await self.delete(checkpoint_id)

    # -- reading ---------------------------------------------------------------------------

    @traced("checkpoint.load")
    async def load(self, checkpoint_id: str) -> WorkflowCheckpoint:
        """The checkpoint with this id (a new copy); ``CheckpointNotFoundError`` if there is none.

        In 1.x that error is also the ``WorkflowCheckpointException`` the protocol names.
        """
        checkpoint = await self._load(checkpoint_id)
        if checkpoint is None:
            raise _not_found_class()(checkpoint_id, self.key_prefix)
        return checkpoint

    @traced("checkpoint.load")
    async def load_checkpoint(self, checkpoint_id: str) -> WorkflowCheckpoint | None:
        """The checkpoint with this id (a new copy), or None if there is none."""
        return await self._load(checkpoint_id)

    async def _workflow_of(self, checkpoint_id: str) -> WorkflowKeys | None:
        """The keys of the workflow the prefix's index files ``checkpoint_id`` under (None: not filed)."""
        validate_thread_id(checkpoint_id, name="checkpoint_id")
        index = self._keyspace.checkpoint_index
        with self._redis_errors(index):
            workflow_name = await self._redis.hget(index, checkpoint_id)  # type: ignore[misc]
        return None if workflow_name is None else self._keyspace.workflow(_text(workflow_name))

    async def _load(self, checkpoint_id: str) -> WorkflowCheckpoint | None:
        keys = await self._workflow_of(checkpoint_id)
        if keys is None:
            return None
        with self._redis_errors(keys.checkpoints):
            stored = await self._redis.hget(keys.checkpoints, checkpoint_id)  # type: ignore[misc]
        return None if stored is None else self._restore(keys, checkpoint_id, stored)

    @traced("checkpoint.get_latest")
    async def get_latest(
        self, *, workflow_name: str | None = None, workflow_id: str | None = None
    ) -> WorkflowCheckpoint | None:
        """The newest checkpoint of a workflow (a new copy), or None if it has none. One round trip."""
        name = _workflow(workflow_name, workflow_id)
        if name is None:
            raise TypeError("get_latest() needs workflow_name= (or workflow_id=)")
        keys = self._keyspace.workflow(name)
        with self._redis_errors(keys.timeline):
            newest = await latest_checkpoint(keys).run(self._redis)
        if not newest:
            return None
        checkpoint_id, stored = _text(newest[0]), newest[1]
        if stored is None:
            raise CorruptCheckpointError(keys.checkpoints, checkpoint_id, "the timeline names it but it is missing")
        return self._restore(keys, checkpoint_id, stored)

    async def list_checkpoint_ids(
        self, workflow_id: str | None = None, *, workflow_name: str | None = None
    ) -> list[str]:
        """The ids of a workflow's checkpoints, oldest first (no name: every workflow's)."""
        name = _workflow(workflow_name, workflow_id)
        if name is None:
            return [checkpoint_id for each in await self._workflow_names() for checkpoint_id in await self._ids(each)]
        return await self._ids(name)

    async def list_checkpoints(
        self, workflow_id: str | None = None, *, workflow_name: str | None = None
    ) -> list[WorkflowCheckpoint]:
        """A workflow's checkpoints (new copies), oldest first (no name: every workflow's).

        One that cannot be restored is left out with a warning, as ``FileCheckpointStorage`` does.
        """
        name = _workflow(workflow_name, workflow_id)
        names = [name] if name is not None else await self._workflow_names()
        found: list[WorkflowCheckpoint] = []
        for each in names:
            async for checkpoint in self._checkpoints(each, newest_first=False, page_size=_PAGE, skip_corrupt=True):
                found.append(checkpoint)
        return found

    async def iter_checkpoints(
        self, workflow_name: str, *, newest_first: bool = True, page_size: int = _PAGE
    ) -> AsyncIterator[WorkflowCheckpoint]:
        """A workflow's checkpoints, read ``page_size`` at a time (two round trips a page).

        A checkpoint deleted or trimmed while the iteration runs is skipped, and none is
        returned twice. One that cannot be restored raises (``CorruptCheckpointError``,
        ``DecryptionError``).
        """
        size = validate_positive(page_size, "page_size") or _PAGE
        async for checkpoint in self._checkpoints(workflow_name, newest_first=newest_first, page_size=size):
            yield checkpoint

    # -- operations ------------------------------------------------------------------------

    async def checkpoint_info(self, checkpoint_id: str, *, details: bool = True) -> CheckpointInfo | None:
        """What is stored about one checkpoint (None if there is none), without restoring it.

        ``details``: also read the fields inside it (previous id, iteration count, pending
        requests) from its top-level JSON: a sealed body is authenticated first, and nothing
        is decoded or unpickled. Sealed with a key this storage lacks (or without
        ``encryption=``), those stay None and ``details`` False.
        """
        keys = await self._workflow_of(checkpoint_id)
        if keys is None:
            return None
        with self._redis_errors(keys.checkpoints):
            pipe = self._redis.pipeline(transaction=False)
            pipe.hget(keys.checkpoints, checkpoint_id)
            pipe.zscore(keys.timeline, checkpoint_id)
            stored, score = await pipe.execute()
        if stored is None:
            return None  # an index entry whose checkpoint is gone (see sweep_index)
        info = CheckpointInfo(
            checkpoint_id=checkpoint_id,
            workflow_name=keys.workflow_name,
            saved_at=_saved_at(score),
            size_bytes=len(_bytes(stored)),
            key_id=key_id_of(stored),
        )
        return self._with_details(keys, info, stored) if details else info

    async def checkpoint_page(
        self, workflow_name: str, *, limit: int = 50, cursor: str | None = None, newest_first: bool = True
    ) -> CheckpointPage:
        """Up to ``limit`` of a workflow's checkpoints (``CheckpointInfo``, nothing decoded), newest first.

        Two round trips whatever the workflow's size; pass ``next_cursor`` back for the next
        page (a position: checkpoints deleted between pages shift nothing).
        """
        size = validate_positive(limit, "limit") or 50
        keys = self._keyspace.workflow(_checked_name(workflow_name))
        after = None if cursor is None else _parse_cursor(cursor)
        with self._redis_errors(keys.timeline):
            page = await self._page(keys, newest_first, after, size + 1)
            more = len(page) > size
            page = page[:size]
            pipe = self._redis.pipeline(transaction=False)
            for member, _ in page:
                pipe.hstrlen(keys.checkpoints, member)
            sizes = await pipe.execute() if page else []
        infos = [
            CheckpointInfo(_text(member), workflow_name, _saved_at(score), int(length))
            for (member, score), length in zip(page, sizes, strict=True)
            if length  # 0: deleted or trimmed since the timeline was read
        ]
        next_cursor = f"{page[-1][1]}:{_text(page[-1][0])}" if more and page else None
        return CheckpointPage(infos, next_cursor)

    async def workflows(self, *, after: str | None = None, limit: int | None = None) -> list[WorkflowSummary]:
        """The workflows that have checkpoints, by name: each one's count and newest checkpoint.

        ``after``: only names after this one; ``limit``: at most this many (a page: pass the
        last name back as ``after``). Reads the prefix's checkpoint index with HSCAN (never
        KEYS, never blocking the server), then two commands per workflow of the page, pipelined.
        """
        size = validate_positive(limit, "limit")
        names = [name for name in await self._workflow_names() if after is None or name > after]
        found: list[WorkflowSummary] = []
        for start in range(0, len(names), _WORKFLOW_BATCH):
            batch = [self._keyspace.workflow(name) for name in names[start : start + _WORKFLOW_BATCH]]
            pipe = self._redis.pipeline(transaction=False)
            for keys in batch:
                pipe.zcard(keys.timeline)
                pipe.zrevrange(keys.timeline, 0, 0, withscores=True)
            with self._redis_errors(self._keyspace.checkpoint_index):
                replies = await pipe.execute()
            for n, keys in enumerate(batch):
                count, newest = replies[2 * n], replies[2 * n + 1]
                if count and newest:
                    member, score = newest[0]
                    found.append(WorkflowSummary(keys.workflow_name, int(count), _text(member), _saved_at(score)))
            if size is not None and len(found) >= size:
                return found[:size]
        return found

    async def stats(self) -> CheckpointStats:
        """How many workflows and checkpoints the prefix holds (see ``workflows``)."""
        workflows = await self.workflows()
        index = self._keyspace.checkpoint_index
        with self._redis_errors(index):
            entries = await self._redis.hlen(index)  # type: ignore[misc]
        return CheckpointStats(
            self.key_prefix, len(workflows), sum(workflow.checkpoints for workflow in workflows), int(entries)
        )

    async def prune(self, workflow_name: str, keep: int, *, dry_run: bool = False) -> list[str]:
        """Keep a workflow's newest ``keep`` checkpoints and delete the rest; the ids deleted, oldest first.

        One script call, as a save's ``keep_last`` trim. ``dry_run``: the ids it would delete.
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ValueError(f"keep must be a whole number >= 0, got {keep!r}")
        keys = self._keyspace.workflow(_checked_name(workflow_name))
        index = self._keyspace.checkpoint_index
        with self._redis_errors(keys.timeline):
            if dry_run:
                members: list[bytes | str] = await self._redis.zrange(keys.timeline, 0, -keep - 1)  # type: ignore[misc]
                return [_text(member) for member in members]
            call = prune_checkpoints(keys, keep=keep, index_key=None if self._cluster else index)
            trimmed = [_text(member) for member in await call.run(self._redis)]
            if self._cluster and trimmed:
                await forget_checkpoint_ids(index, keys.workflow_name, trimmed).run(self._redis)
        return trimmed

    async def sweep_index(self, *, dry_run: bool = False) -> list[str]:
        """Remove the prefix index's entries whose checkpoint is gone; the ids removed.

        The index (checkpoint id -> workflow name) outlives checkpoints that expired with their
        workflow's TTL (and, on a Cluster, a trim interrupted between its two steps). Walks it
        with HSCAN. On standalone Redis each removal checks, in one script, that the entry and
        the missing checkpoint are still as read; on a Cluster (the index is in another slot)
        run it when no save of those ids is under way.
        """
        index = self._keyspace.checkpoint_index
        removed: list[str] = []
        batch: list[tuple[str, WorkflowKeys]] = []
        with self._redis_errors(index):
            async for checkpoint_id, name in self._redis.hscan_iter(index, count=1000):  # type: ignore[misc]
                batch.append((_text(checkpoint_id), self._keyspace.workflow(_text(name))))
                if len(batch) >= _WORKFLOW_BATCH:
                    removed += await self._sweep(index, batch, dry_run)
                    batch = []
            removed += await self._sweep(index, batch, dry_run)
        return removed

    async def _sweep(self, index: str, batch: list[tuple[str, WorkflowKeys]], dry_run: bool) -> list[str]:
        if not batch:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for checkpoint_id, keys in batch:
            pipe.hexists(keys.checkpoints, checkpoint_id)
        stale = [entry for entry, present in zip(batch, await pipe.execute(), strict=True) if not present]
        if dry_run or not stale:
            return [checkpoint_id for checkpoint_id, _ in stale]
        if not self._cluster:
            return [_text(each) for each in await sweep_checkpoint_index(index, stale).run(self._redis)]
        removed: list[str] = []
        for checkpoint_id, keys in stale:
            # Another slot: re-read just before the delete, the narrowest window a Cluster allows.
            located = await self._redis.hget(index, checkpoint_id)  # type: ignore[misc]
            if (
                located is not None
                and _text(located) == keys.workflow_name
                and not await self._redis.hexists(keys.checkpoints, checkpoint_id)  # type: ignore[misc]
            ):
                await self._redis.hdel(index, checkpoint_id)  # type: ignore[misc]
                removed.append(checkpoint_id)
        return removed

    def _with_details(self, keys: WorkflowKeys, info: CheckpointInfo, stored: bytes | str) -> CheckpointInfo:
        """``info`` with the top-level fields of the checkpoint's JSON (nothing decoded or unpickled)."""
        encryption = self._options.encryption
        if info.key_id is not None and (encryption is None or info.key_id not in _key_ids(encryption)):
            return info  # sealed with a key this storage lacks: what the timeline says is all there is
        try:
            # Plaintext too, with encryption= on: only its JSON is read, nothing restored from it.
            opened = decrypt_entry(
                encryption, stored, key=keys.body_context(info.checkpoint_id), index=0, allow_plaintext=True
            )
        except DecryptionError as err:
            raise _decryption_error(keys.checkpoints, info.checkpoint_id, err.reason) from err
        compressed = is_compressed(opened)
        try:
            data = json.loads(decompress(opened) if compressed else opened)
        except ValueError as err:
            raise CorruptCheckpointError(keys.checkpoints, info.checkpoint_id, f"not JSON ({err})") from err
        if not isinstance(data, dict):
            raise CorruptCheckpointError(keys.checkpoints, info.checkpoint_id, "not a checkpoint object")
        previous, iterations, pending = (
            data.get("previous_checkpoint_id"),
            data.get("iteration_count"),
            data.get("pending_request_info_events"),
        )
        return CheckpointInfo(
            checkpoint_id=info.checkpoint_id,
            workflow_name=info.workflow_name,
            saved_at=info.saved_at,
            size_bytes=info.size_bytes,
            key_id=info.key_id,
            compressed=compressed,
            previous_checkpoint_id=previous if isinstance(previous, str) else None,
            iteration_count=iterations if isinstance(iterations, int) and not isinstance(iterations, bool) else None,
            pending_requests=len(pending) if isinstance(pending, dict | list) else None,
            details=True,
        )

    # -- internals -------------------------------------------------------------------------

    async def _ids(self, workflow_name: str) -> list[str]:
        keys = self._keyspace.workflow(workflow_name)
        with self._redis_errors(keys.timeline):
            members: list[bytes | str] = await self._redis.zrange(keys.timeline, 0, -1)  # type: ignore[misc]
        return [_text(member) for member in members]

    async def _workflow_names(self) -> list[str]:
        """Every workflow name in the checkpoint index (HSCAN: never blocks the server)."""
        index = self._keyspace.checkpoint_index
        names: dict[str, None] = {}
        with self._redis_errors(index):
            async for _, name in self._redis.hscan_iter(index, count=1000):  # type: ignore[misc]
                names.setdefault(_text(name))
        return sorted(names)

    async def _checkpoints(
        self, workflow_name: str, *, newest_first: bool, page_size: int, skip_corrupt: bool = False
    ) -> AsyncIterator[WorkflowCheckpoint]:
        keys = self._keyspace.workflow(workflow_name)
        after: tuple[bytes | str, int] | None = None
        while True:
            with self._redis_errors(keys.timeline):
                page = await self._page(keys, newest_first, after, page_size)
                if not page:
                    return
                stored = await self._redis.hmget(keys.checkpoints, [member for member, _ in page])  # type: ignore[misc]
            for (member, _), body in zip(page, stored, strict=True):
                if body is None:
                    continue  # deleted or trimmed since the page was read
                try:
                    yield self._restore(keys, _text(member), body)
                except (CorruptCheckpointError, DecryptionError) as err:
                    if not skip_corrupt:
                        raise
                    logger.warning("Skipped a checkpoint that cannot be restored: %s", err)
            if len(page) < page_size:
                return
            after = page[-1]

    async def _page(
        self, keys: WorkflowKeys, newest_first: bool, after: tuple[bytes | str, int] | None, count: int
    ) -> list[tuple[bytes | str, int]]:
        """The next ``count`` timeline entries (member, score) after ``after`` (None: from the start)."""
        if after is None:
            read: Callable[..., Awaitable[Any]] = self._redis.zrevrange if newest_first else self._redis.zrange
            return [(member, int(score)) for member, score in await read(keys.timeline, 0, count - 1, withscores=True)]
        # A position, unlike an offset, stays put when entries are removed between pages.
        flat = await registry_after(
            keys.timeline,
            newest_first=newest_first,
            after_score=after[1],
            after_member=_bytes(after[0]),
            count=count,
        ).run(self._redis)
        return [(flat[i], int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]

    def _restore(self, keys: WorkflowKeys, checkpoint_id: str, stored: bytes | str) -> WorkflowCheckpoint:
        """The checkpoint of a stored body: opened (sealed bodies before anything is parsed), decoded, checked."""
        op = current_operation()
        if op is not None:
            op.set(ENCRYPTED, self._options.encryption is not None)
            op.add(BYTES_RECEIVED, len(_bytes(stored)))
        try:
            opened = decrypt_entry(self._options.encryption, stored, key=keys.body_context(checkpoint_id), index=0)
        except DecryptionError as err:
            raise _decryption_error(keys.checkpoints, checkpoint_id, err.reason) from err
        try:
            if is_compressed(opened):
                opened = decompress(opened)
            data = json.loads(opened)
            if not isinstance(data, dict):
                raise TypeError(f"expected a checkpoint object, got {type(data).__name__}")
            checkpoint = _codec().decode(data, self._allowed_types)
        except CorruptCheckpointError:
            raise
        except Exception as err:  # the framework's decoding raises its own and anything a type's pickle raises
            raise CorruptCheckpointError(keys.checkpoints, checkpoint_id, f"{type(err).__name__}: {err}") from err
        found_id, found_name = _codec().identity(checkpoint)
        if found_id != checkpoint_id or found_name != keys.workflow_name:
            raise CorruptCheckpointError(
                keys.checkpoints,
                checkpoint_id,
                f"it holds checkpoint {found_id!r} of workflow {found_name!r}: it was moved or altered",
            )
        return checkpoint

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(key_prefix={self.key_prefix!r}, keep_last={self._keep_last!r}, "
            f"ttl={self.ttl!r}, redis={self._redis_repr()!r})"
        )

    def _redis_errors(self, key: str) -> AbstractContextManager[None]:
        return translate_redis_errors(self._where(), key, "workflow checkpoints")


# -- the two generations' checkpoints ----------------------------------------------------------


class _CurrentCodec:
    """1.x: what ``FileCheckpointStorage`` writes, compact; loads through its restricted unpickler."""

    def __init__(self) -> None:
        from agent_framework import WorkflowCheckpoint
        from agent_framework._workflows._checkpoint_encoding import (
            decode_checkpoint_value,
            encode_checkpoint_value,
        )
        from agent_framework.exceptions import WorkflowCheckpointException

        self._checkpoint = WorkflowCheckpoint
        self._encode, self._decode = encode_checkpoint_value, decode_checkpoint_value
        self._exception = WorkflowCheckpointException

    def encode(self, checkpoint: Any, allowed_types: frozenset[str]) -> tuple[str, str, str]:
        if not isinstance(checkpoint, self._checkpoint):
            raise TypeError(f"checkpoint must be a WorkflowCheckpoint, got {type(checkpoint).__name__}")
        checkpoint_id = validate_thread_id(checkpoint.checkpoint_id, name="checkpoint.checkpoint_id")
        try:
            encoded = self._encode(checkpoint.to_dict())
            # As FileCheckpointStorage: fail now rather than when the checkpoint is needed.
            self._decode(encoded, allowed_types=allowed_types)
        except self._exception:
            raise
        except Exception as err:
            raise self._exception(
                f"Checkpoint {checkpoint_id} cannot be encoded or restored under this storage's allowed types; "
                "refusing to save."
            ) from err
        return checkpoint_id, _name(checkpoint.workflow_name), _json(encoded)

    def decode(self, data: dict[str, Any], allowed_types: frozenset[str]) -> Any:
        return self._checkpoint.from_dict(self._decode(data, allowed_types=allowed_types))

    def identity(self, checkpoint: Any) -> tuple[str, str]:
        return checkpoint.checkpoint_id, checkpoint.workflow_name


class _LegacyCodec:
    """Legacy: the JSON of ``asdict(checkpoint)``, as its ``FileCheckpointStorage`` writes it."""

    def __init__(self) -> None:
        from agent_framework import WorkflowCheckpoint

        self._checkpoint = WorkflowCheckpoint

    def encode(self, checkpoint: Any, allowed_types: frozenset[str]) -> tuple[str, str, str]:
        if not isinstance(checkpoint, self._checkpoint):
            raise TypeError(f"checkpoint must be a WorkflowCheckpoint, got {type(checkpoint).__name__}")
        checkpoint_id = validate_thread_id(checkpoint.checkpoint_id, name="checkpoint.checkpoint_id")
        try:
            return checkpoint_id, _name(getattr(checkpoint, "workflow_id", None)), _json(asdict(checkpoint))
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"checkpoint {checkpoint_id!r} holds a value that does not serialize to JSON ({err})"
            ) from err

    def decode(self, data: dict[str, Any], allowed_types: frozenset[str]) -> Any:
        return self._checkpoint(**data)

    def identity(self, checkpoint: Any) -> tuple[str, str]:
        return checkpoint.checkpoint_id, checkpoint.workflow_id


@cache
def _codec() -> _CurrentCodec | _LegacyCodec:
    return _CurrentCodec() if generation() == "current" else _LegacyCodec()


@cache
def _not_found_class() -> type[CheckpointNotFoundError]:
    """``CheckpointNotFoundError``; in 1.x, one that is also the ``WorkflowCheckpointException`` load must raise."""
    if generation() != "current":
        return CheckpointNotFoundError
    from agent_framework.exceptions import WorkflowCheckpointException

    return type(
        "CheckpointNotFoundError",
        (CheckpointNotFoundError, WorkflowCheckpointException),
        {"__module__": CheckpointNotFoundError.__module__, "__doc__": CheckpointNotFoundError.__doc__},
    )


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a broken decode upstream): escaped, it still round-trips.
        text = json.dumps(value, separators=(",", ":"))
    return text


def _name(workflow_name: object) -> str:
    if not isinstance(workflow_name, str):
        raise TypeError(f"the checkpoint's workflow name must be a str, got {type(workflow_name).__name__}")
    return workflow_name


def _workflow(workflow_name: str | None, workflow_id: str | None) -> str | None:
    """The workflow named either way; both given must agree."""
    if workflow_name is not None and workflow_id is not None and workflow_name != workflow_id:
        raise ValueError(f"workflow_name={workflow_name!r} and workflow_id={workflow_id!r} disagree; give one")
    name = workflow_name if workflow_name is not None else workflow_id
    if name is not None and not isinstance(name, str):
        raise TypeError(f"workflow_name must be a str, got {type(name).__name__}")
    return name


def _allowed_types(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Sequence | frozenset | set):
        raise TypeError(f"allowed_checkpoint_types must be a list of 'module:qualname' str, got {type(value).__name__}")
    for entry in value:
        if not isinstance(entry, str) or ":" not in entry:
            raise ValueError(f"allowed_checkpoint_types entries must be 'module:qualname' str, got {entry!r}")
    return frozenset(value)


def _timestamp_ms(timestamp: object) -> int:
    """A checkpoint's ISO 8601 timestamp in ms since the epoch (naive: UTC); now if it is not one."""
    try:
        moment = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else None
    except ValueError:
        moment = None
    if moment is None:
        moment = datetime.now(UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _decryption_error(key: str, checkpoint_id: str, reason: str) -> DecryptionError:
    error = DecryptionError(key, 0, reason)
    # Addressed as a hash field, not a list index: the message says so.
    error.args = (f"Cannot decrypt checkpoint {checkpoint_id!r} in the Redis hash {key!r}: {reason}.",)
    return error


def _saved_at(score: object) -> datetime:
    """The save time a timeline score stands for (the checkpoint's timestamp, to the millisecond)."""
    return datetime.fromtimestamp(int(float(score or 0)) // CHECKPOINT_TIES / 1000, UTC)  # type: ignore[arg-type]


def _key_ids(encryption: object) -> list[str]:
    """The key ids an encryption can open (``AESGCMEncryption.key_ids``; else its current one)."""
    key_ids = getattr(encryption, "key_ids", None)
    return list(key_ids) if isinstance(key_ids, list | tuple) else [str(getattr(encryption, "key_id", ""))]


def _checked_name(workflow_name: object) -> str:
    if not isinstance(workflow_name, str):
        raise TypeError(f"workflow_name must be a str, got {type(workflow_name).__name__}")
    return workflow_name


def _parse_cursor(cursor: object) -> tuple[bytes, int]:
    """A ``next_cursor`` read back: (member, score); ValueError naming the cursor otherwise."""
    score, sep, member = cursor.partition(":") if isinstance(cursor, str) else ("", "", "")
    if not sep or not score.isdigit():
        raise ValueError(f"cursor {cursor!r} is not one a page returned (next_cursor)")
    return member.encode("utf-8"), int(score)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value
