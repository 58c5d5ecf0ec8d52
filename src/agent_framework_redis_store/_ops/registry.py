"""The thread registry: which threads exist under a key prefix, how big, how old, for whom.

The store keeps it itself: every append updates the thread's meta hash
(``{prefix}:{<id>}:meta``) and the prefix-wide sorted set ``{prefix}:registry`` (thread id
scored by last activity in milliseconds) in the same round trip. ``RedisThreadRegistry``
reads it by paging through that sorted set, a bounded batch at a time, so listing, purging
and counting 100,000 threads needs constant memory and never uses KEYS or SCAN. Threads
that expired by TTL leave a stale registry entry behind, which reads skip and remove.

A thread is every key it owns (``ThreadKeys.owned``): an entry whose meta hash is gone
(evicted) while other keys of its thread remain is kept, listed with what is known, and
deleted, purged and erased like any other. A thread whose meta hash is damaged is skipped by
listings and reported (``ThreadPage.damaged``, ``RegistryStats.damaged``, ...).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Self, Unpack

from .._core.cluster import RedisClient, is_cluster
from .._core.connection import ClientOwner
from .._core.encryption import MessageEncryption
from .._core.errors import (
    CorruptThreadMetaError,
    RedisPermissionError,
    ThreadNotFoundError,
    is_wrong_type,
    translate_redis_errors,
    wrong_type_kept,
)
from .._core.keyspace import Keyspace, validate_thread_id
from .._core.lua import PURGE_THREAD, prune_registry, purge_thread, registry_after
from .._core.meta import (
    EPOCH,
    ThreadInfo,
    ThreadMeta,
    ThreadSummary,
    decode_labels,
    from_ms,
    iso,
    read_labels,
    read_thread_info,
    to_ms,
)
from .._core.options import RegistryOptions, parse_options, validate_labels
from .._core.records import ThreadRecord, fork_thread, read_record, write_record
from .._core.removal import Deleted, delete_threads
from .._core.telemetry import traced

__all__ = [
    "ErasureReceipt",
    "PurgeResult",
    "RedisThreadRegistry",
    "RegistryStats",
    "ThreadInfo",
    "ThreadPage",
    "ThreadRecord",
    "ThreadSummary",
]

RECORD_VERSION = 1
# Registry entries read per round trip: bounds memory, amortises latency.
_BATCH = 500
# How often erase looks again for threads written while it ran.
_ERASE_ROUNDS = 10


@dataclass(frozen=True)
class ThreadPage:
    """A page of ``list_threads``; pass ``next_cursor`` back for the next (None: no more)."""

    threads: list[ThreadSummary]
    next_cursor: str | None
    damaged: list[str] = field(default_factory=list)
    """Ids of matching threads skipped on this page: their meta hash is damaged (``info`` names the
    field), or missing while the labels asked for could be checked nowhere else; and entries of the
    index that cannot be a thread id (not UTF-8, shown with backslash escapes, or empty)."""


@dataclass(frozen=True)
class PurgeResult:
    """What ``purge`` did (or, with ``dry_run``, would do)."""

    cutoff: datetime
    dry_run: bool
    purged: int
    """Threads last active at or before ``cutoff``, deleted (or to be deleted)."""
    expired: int
    """Registry entries of threads that had already expired by TTL, removed (or to be removed)."""
    kept: int
    """Threads written to while the purge ran, left alone."""
    damaged: tuple[str, ...] = ()
    """Threads whose last activity cannot be read (damaged meta hash), left alone: ``info`` names the field."""
    thread_ids: tuple[str, ...] = ()
    """The ids of the ``purged`` threads (or, with ``dry_run``, of those to be purged), oldest activity first."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "cutoff": iso(self.cutoff),
            "dry_run": self.dry_run,
            "purged": self.purged,
            "expired": self.expired,
            "kept": self.kept,
            "damaged": list(self.damaged),
            "thread_ids": list(self.thread_ids),
        }


@dataclass(frozen=True)
class ErasureReceipt:
    """What ``erase`` deleted (or, with ``dry_run``, would delete): a record for a deletion request."""

    labels: dict[str, str]
    dry_run: bool
    thread_ids: tuple[str, ...]
    """Every thread erased, those written during the erasure included."""
    written_during: tuple[str, ...]
    """Threads of these labels that appeared, or were written again, while the erasure ran (erased too)."""
    keys_deleted: int
    messages_deleted: int
    started_at: datetime
    finished_at: datetime
    complete: bool
    """True only if a final check found no key left of any erased thread (every key it owns) and no
    other thread of these labels; False: ``remaining`` lists what was left after every round."""
    remaining: tuple[str, ...] = ()
    """Threads of these labels, or erased ones, that still held keys after the last round: run it again."""
    unverified: tuple[str, ...] = ()
    """Threads left alone because their labels cannot be read (meta hash missing or damaged) and no
    label index names them (the prefix's indexes are incomplete: ``reindex``): check them."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (timestamps as ISO 8601 UTC)."""
        return {
            "labels": self.labels,
            "dry_run": self.dry_run,
            "thread_ids": list(self.thread_ids),
            "written_during": list(self.written_during),
            "keys_deleted": self.keys_deleted,
            "messages_deleted": self.messages_deleted,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "complete": self.complete,
            "remaining": list(self.remaining),
            "unverified": list(self.unverified),
        }


@dataclass(frozen=True)
class RegistryStats:
    """Totals over one key prefix; ``length_distribution`` counts threads per length bucket."""

    key_prefix: str
    threads: int
    messages: int
    approximate_bytes: int | None
    oldest_activity: datetime | None
    newest_activity: datetime | None
    length_distribution: dict[str, int]
    expired_removed: int
    damaged: int = 0
    """Threads skipped because their meta hash is damaged (not counted above)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "key_prefix": self.key_prefix,
            "threads": self.threads,
            "messages": self.messages,
            "approximate_bytes": self.approximate_bytes,
            "oldest_activity": iso(self.oldest_activity),
            "newest_activity": iso(self.newest_activity),
            "length_distribution": self.length_distribution,
            "expired_removed": self.expired_removed,
            "damaged": self.damaged,
        }


def _length_bucket(length: int) -> str:
    if length <= 1:
        return "1"
    upper = 10
    while length > upper:
        upper *= 10
    return f"{upper // 10 + 1}-{upper}"


# -- paging through the registry ------------------------------------------------------------


@dataclass(frozen=True)
class _Position:
    """Where a walk stands: just past the entry ``member`` at ``score`` (exclusive)."""

    score: int
    member: bytes

    def encode(self) -> str:
        raw = json.dumps([self.score, base64.b64encode(self.member).decode()])
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @classmethod
    def decode(cls, cursor: str) -> Self:
        try:
            # Cursors of earlier versions held [score, ties, member]: the position is the same.
            score, *_, member = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            return cls(int(score), base64.b64decode(member, validate=True))
        except (ValueError, TypeError) as err:
            raise ValueError(f"cursor {cursor!r} is not a cursor returned by list_threads") from err


@dataclass(frozen=True)
class _Entry:
    member: bytes
    score: int

    @property
    def thread_id(self) -> str:
        return self.member.decode("utf-8")

    @property
    def position(self) -> _Position:
        return _Position(self.score, self.member)


_Verdict = Literal["listed", "damaged", "unverified"]


@dataclass(frozen=True)
class _Described:
    """A registry (or label index) entry whose thread still owns a key."""

    entry: _Entry
    summary: ThreadSummary | None
    """None when its meta hash is damaged."""
    labels: dict[str, str] | None
    """The labels its meta hash holds; None when they cannot be read (meta hash missing or damaged)."""

    def verdict(self, filters: Mapping[str, str], *, via_index: bool) -> _Verdict | None:
        """Whether the thread matches ``filters``: listed, damaged (matches, or an index of them
        names it, but its meta hash cannot be read), unverified (its labels are known nowhere), or None."""
        if self.labels is not None:
            if not all(self.labels.get(k) == v for k, v in filters.items()):
                return None
        elif filters and not via_index:
            return "unverified"
        return "listed" if self.summary is not None else "damaged"


def _is_thread_id(member: bytes) -> bool:
    try:
        validate_thread_id(member.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return False
    return True


def _purge_outcome(active: object, existing: object, cutoff_ms: int) -> int:
    """What ``PURGE_THREAD`` would return for a thread, from its ``active`` and how many of its keys exist."""
    if isinstance(active, Exception):
        if not is_wrong_type(active):
            raise active
        return 3
    if isinstance(existing, Exception):
        raise existing
    if active is None:
        return 1 if existing else 2
    text = active if isinstance(active, bytes) else str(active).encode("utf-8")
    if not re.fullmatch(rb"[0-9]+", text):
        return 3
    return 0 if int(text) > cutoff_ms else 1


class _Walk:
    """Pages through the registry sorted set between two scores, newest or oldest first.

    Each batch continues strictly after the last entry returned, by (score, member): the
    order Redis keeps. Entries removed or rescored meanwhile, by the caller or by writers,
    move no other entry, so an entry left alone is returned exactly once.
    """

    def __init__(
        self,
        redis: RedisClient,
        key: str,
        *,
        newest_first: bool,
        low: float,
        high: float,
        after: _Position | None,
        where: str,
    ) -> None:
        self._redis = redis
        self._where = where
        self._key = key
        self._newest_first = newest_first
        self._low = low
        self._high = high
        self._after = after
        self.done = False
        self.foreign: list[str] = []
        """Members passed over that cannot be a thread id (not UTF-8, empty): written by something else."""

    async def batch(self, size: int = _BATCH) -> list[_Entry]:
        with _redis_errors(self._where, self._key):
            rows = await self._rows(size)
        if len(rows) < size:
            self.done = True
        entries: list[_Entry] = []
        for raw_member, raw_score in rows:
            score = int(float(raw_score))
            if not self._low <= score <= self._high:
                self.done = True  # past the end of the range: so is everything after it
                break
            # A caller's client may decode responses: compare members as Redis does, as bytes.
            member = raw_member if isinstance(raw_member, bytes) else str(raw_member).encode("utf-8")
            entry = _Entry(member, score)
            self._after = entry.position
            if _is_thread_id(member):
                entries.append(entry)
            else:  # no thread has keys under it: nothing to list, delete or erase
                self.foreign.append(member.decode("utf-8", "backslashreplace"))
        return entries

    async def _rows(self, size: int) -> Sequence[Any]:
        after = self._after
        if after is None:
            if self._newest_first:
                return await self._redis.zrevrangebyscore(
                    self._key, self._high, self._low, start=0, num=size, withscores=True
                )
            return await self._redis.zrangebyscore(self._key, self._low, self._high, start=0, num=size, withscores=True)
        call = registry_after(
            self._key, newest_first=self._newest_first, after_score=after.score, after_member=after.member, count=size
        )
        flat = await call.run(self._redis)
        return list(zip(flat[::2], flat[1::2], strict=True))


# -- the registry ----------------------------------------------------------------------------


def _redis_errors(where: str, key: str) -> AbstractContextManager[None]:
    # The package's shared translation; WRONGTYPE names the registry key or a thread's keys.
    return translate_redis_errors(where, key, "what the thread registry expects there")


def _readable_labels(raw: bytes | str | None, meta_key: str) -> dict[str, str] | None:
    """A damaged meta hash's labels, if that field at least can be read."""
    if raw is None:
        return None
    try:
        return read_labels(raw, key=meta_key)
    except CorruptThreadMetaError:
        return None


def _as_cutoff_ms(now_ms: int, older_than: timedelta | float) -> int:
    seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"older_than must be a non-negative timedelta or number of seconds, got {older_than!r}")
    return now_ms - int(seconds * 1000)


class RedisThreadRegistry(ClientOwner):
    """Lists, inspects, exports, imports, forks, deletes, erases and purges the threads of one key prefix.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL (else ``REDIS_URL``).

    Keyword Args:
        redis_client: A ``redis.asyncio`` client to use instead (never closed by the registry).
        **options: ``RegistryOptions``: ``key_prefix`` (the prefix the stores write under),
            ``encryption`` (the stores' ``encryption=``: export decrypts, so the export holds
            plaintext; import encrypts for the destination thread) and the connection options.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis_client: RedisClient | None = None,
        **options: Unpack[RegistryOptions],
    ) -> None:
        settings, connection = parse_options(type(self).__name__, options, RegistryOptions)
        self._keyspace = settings.keyspace
        self._key_prefix = settings.key_prefix
        self._encryption = settings.encryption
        self._open_client(redis_client, redis_url, connection)
        self._index = self._keyspace.registry

    @property
    def key_prefix(self) -> str:
        """The key prefix this registry reads."""
        return self._key_prefix

    @property
    def keyspace(self) -> Keyspace:
        """The keys of this registry's prefix."""
        return self._keyspace

    @property
    def encryption(self) -> MessageEncryption | None:
        """The ``encryption=`` given, for stores made on this registry's threads."""
        return self._encryption

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key_prefix={self._key_prefix!r}, redis={self._where()!r})"

    # -- reading -------------------------------------------------------------------------

    async def now(self) -> datetime:
        """The Redis server's clock, which ``purge`` cutoffs and ``active_since`` durations count from.

        Writers stamp activity with their own clocks (as they do batch tokens); with clocks in
        sync, that is within milliseconds of this one.
        """
        with self._errors():
            seconds, micros = await self._redis.time()
        return EPOCH + timedelta(seconds=seconds, microseconds=micros)

    @traced("registry.list")
    async def list_threads(
        self,
        *,
        labels: Mapping[str, str] | None = None,
        active_since: datetime | timedelta | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ThreadPage:
        """Threads by last activity, newest first, a page at a time.

        ``labels`` keeps threads carrying all those labels, read from the label indexes (see
        ``reindex`` for threads written before them); ``active_since`` (a time, or a duration
        back from now) keeps recently active ones. Expired threads are skipped and their
        entries removed. A thread whose meta hash is gone but which still owns a key is listed
        with what is known (its message count, its last activity as the index records it); one
        whose meta hash is damaged is skipped and reported in ``ThreadPage.damaged``.
        """
        filters = validate_labels(labels, name="labels") or {}
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        after = _Position.decode(cursor) if cursor is not None else None
        low = await self._since_ms(active_since)
        # With labels, page through the smallest of their indexes: the cost of a page does not
        # depend on how many threads the prefix has. (A cursor names a position, whichever key.)
        key = await self._label_index_for(filters)
        walk = self._walk(newest_first=True, low=low, high=float("inf"), after=after, key=key)
        via_index = key != self._index
        found: list[ThreadSummary] = []
        damaged: list[str] = []
        # Every thread's labels are checked on its metadata, the index's own too: on a Cluster an
        # index entry is written beside the thread and may outlive a relabelling. A label index
        # holds (almost) only matches, so one extra entry tells whether another page exists.
        size = _BATCH if filters and not via_index else min(_BATCH, limit + 1)
        while not walk.done:
            described = await self._described(await walk.batch(size), key)
            for index, thread in enumerate(described):
                verdict = thread.verdict(filters, via_index=via_index)
                if verdict is None:
                    continue
                if verdict != "listed" or thread.summary is None:
                    damaged.append(thread.entry.thread_id)
                    continue
                summary = thread.summary
                if thread.labels is None:  # its meta hash is gone: the index it was found in knows its labels
                    summary = replace(summary, labels=dict(filters))
                found.append(summary)
                if len(found) == limit:
                    last = walk.done and index == len(described) - 1
                    return ThreadPage(found, None if last else thread.entry.position.encode(), damaged + walk.foreign)
        return ThreadPage(found, None, damaged + walk.foreign)

    async def iter_threads(
        self,
        *,
        labels: Mapping[str, str] | None = None,
        active_since: datetime | timedelta | None = None,
        on_damaged: Callable[[str], None] | None = None,
    ) -> AsyncIterator[ThreadSummary]:
        """Every matching thread, newest activity first, read a page at a time.

        Threads skipped because their meta hash is damaged are passed to ``on_damaged(thread_id)``.
        """
        cursor: str | None = None
        while True:
            page = await self.list_threads(labels=labels, active_since=active_since, limit=_BATCH, cursor=cursor)
            if on_damaged is not None:
                for thread_id in page.damaged:
                    on_damaged(thread_id)
            for summary in page.threads:
                yield summary
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def info(self, thread_id: str) -> ThreadInfo:
        """Details of one thread; raises ``ThreadNotFoundError`` if no key of it exists.

        A damaged meta hash field raises ``CorruptThreadMetaError`` naming the key and the field.
        """
        keys = self._keyspace.thread(thread_id)
        with self._errors(keys.messages):
            info = await read_thread_info(self._redis, self._key_prefix, keys)
        if not info.exists:
            raise ThreadNotFoundError(thread_id, self._key_prefix)
        return info

    async def count(self) -> int:
        """How many threads the registry lists (threads expired by TTL included until a read removes them)."""
        with self._errors():
            return int(await self._redis.zcard(self._index))

    async def missing(self, thread_ids: Iterable[str]) -> list[str]:
        """Those of ``thread_ids`` of which no key exists, in the order given."""
        ids = [validate_thread_id(t) for t in thread_ids]
        absent: list[str] = []
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            pipe = self._redis.pipeline(transaction=False)
            for thread_id in chunk:
                pipe.exists(*self._keyspace.thread(thread_id).owned)
            with self._errors():
                found = await pipe.execute()
            absent.extend(t for t, present in zip(chunk, found, strict=True) if not present)
        return absent

    @traced("registry.stats")
    async def stats(self) -> RegistryStats:
        """Threads, messages, approximate bytes and thread-length distribution of the prefix.

        Threads whose meta hash is damaged are counted in ``damaged`` only.
        """
        threads = messages = total_bytes = expired = damaged = 0
        bytes_known = True
        oldest: datetime | None = None
        newest: datetime | None = None
        buckets: dict[str, int] = {}
        walk = self._walk(newest_first=True, low=float("-inf"), high=float("inf"))
        while not walk.done:
            entries = await walk.batch()
            found = await self._described(entries)
            expired += len(entries) - len(found)
            described = [(thread.entry, thread.summary) for thread in found if thread.summary is not None]
            damaged += len(found) - len(described)
            pipe = self._redis.pipeline(transaction=False)
            for entry, _ in described:
                for key in self._keyspace.thread(entry.thread_id).owned:
                    pipe.memory_usage(key)
            with self._errors():
                sizes = await pipe.execute(raise_on_error=False) if described else []
            if any(isinstance(size, Exception) for size in sizes):
                bytes_known = False
            total_bytes += sum(int(s or 0) for s in sizes if not isinstance(s, Exception))
            for _, summary in described:
                threads += 1
                messages += summary.message_count
                bucket = _length_bucket(summary.message_count)
                buckets[bucket] = buckets.get(bucket, 0) + 1
                if summary.last_active is not None:
                    newest = summary.last_active if newest is None else max(newest, summary.last_active)
                    oldest = summary.last_active if oldest is None else min(oldest, summary.last_active)
        damaged += len(walk.foreign)
        ordered = dict(sorted(buckets.items(), key=lambda item: int(item[0].split("-")[0])))
        return RegistryStats(
            key_prefix=self._key_prefix,
            threads=threads,
            messages=messages,
            approximate_bytes=total_bytes if bytes_known else None,
            oldest_activity=oldest,
            newest_activity=newest,
            length_distribution=ordered,
            expired_removed=expired,
            damaged=damaged,
        )

    @traced("registry.export")
    async def export_thread(self, thread_id: str) -> ThreadRecord:
        """A consistent snapshot of one thread; raises ``ThreadNotFoundError`` if absent."""
        keys = self._keyspace.thread(thread_id)
        with self._errors(keys.messages):
            record = await read_record(self._redis, keys, encryption=self._encryption)
        if record is None:
            raise ThreadNotFoundError(thread_id, self._key_prefix)
        return record

    # -- writing -------------------------------------------------------------------------

    @traced("registry.import")
    async def import_thread(self, record: ThreadRecord, *, replace: bool = False) -> bool:
        """Write an exported thread in one atomic step; False if it exists and not ``replace``.

        With ``replace`` every key of the existing thread (its session snapshot included) is
        replaced.
        """
        now_ms = to_ms(await self.now()) if record.created_at is None or record.last_active is None else 0
        with self._errors(self._keyspace.thread(record.thread_id).messages):
            return await write_record(
                self._redis, self._keyspace, record, encryption=self._encryption, replace=replace, now_ms=now_ms
            )

    @traced("registry.delete")
    async def delete(self, thread_ids: Sequence[str]) -> int:
        """Delete every key of each thread, its registry entry and its label index entries; returns how many existed."""
        ids = [validate_thread_id(t) for t in thread_ids]
        deleted = 0
        for start in range(0, len(ids), _BATCH):
            with self._errors():
                deleted += (await delete_threads(self._redis, self._keyspace, ids[start : start + _BATCH])).threads
        return deleted

    @traced("registry.purge")
    async def purge(
        self,
        *,
        older_than: timedelta | float,
        dry_run: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> PurgeResult:
        """Delete every thread last active longer than ``older_than`` ago (seconds or timedelta).

        Also removes the registry entries of threads that expired by TTL (no key of theirs
        left). A thread written to while the purge runs is kept; one whose meta hash is
        damaged is kept and reported in ``damaged``. ``on_progress(done, total)`` is called
        after each batch. With ``dry_run`` nothing is changed and the counts say what would be.
        """
        now_ms = to_ms(await self.now())
        cutoff_ms = _as_cutoff_ms(now_ms, older_than)
        total = await self.count()
        done = expired = kept = 0
        damaged: list[str] = []
        purged_ids: list[str] = []
        walk = self._walk(newest_first=False, low=float("-inf"), high=cutoff_ms)
        while not walk.done:
            entries = await walk.batch()
            if not entries:
                continue
            if not dry_run and not is_cluster(self._redis):
                with self._errors():
                    await PURGE_THREAD.load(self._redis)
            pipe = self._redis.pipeline(transaction=False)
            for entry in entries:
                if dry_run:
                    # Nothing changes, so nothing to do atomically: what PURGE_THREAD would find.
                    keys = self._keyspace.thread(entry.thread_id)
                    pipe.hget(keys.meta, "active")
                    pipe.exists(*keys.owned)
                elif not is_cluster(self._redis):
                    purge_call = purge_thread(
                        self._keyspace.thread(entry.thread_id), cutoff_ms=cutoff_ms, prefix=self._key_prefix
                    )
                    purge_call.script.queue(pipe, purge_call.keys, purge_call.args)
            with self._errors():
                if dry_run:
                    read = await pipe.execute(raise_on_error=False)
                    replies = [_purge_outcome(a, n, cutoff_ms) for a, n in zip(read[::2], read[1::2], strict=True)]
                elif not is_cluster(self._redis):
                    replies = await pipe.execute()
                else:  # Redis Cluster runs no script in a pipeline: one per thread, all at once
                    labels = await self._labels_of(entries)
                    replies = await asyncio.gather(
                        *(
                            purge_thread(self._keyspace.thread(e.thread_id), cutoff_ms=cutoff_ms, prefix=None).run(
                                self._redis
                            )
                            for e in entries
                        )
                    )
                    purged_now = zip(entries, labels, replies, strict=True)
                    await self._unindex([(e.thread_id, lab) for e, lab, reply in purged_now if reply == 1])
            outcomes = [int(reply) for reply in replies]
            gone = [e for e, outcome in zip(entries, outcomes, strict=True) if outcome in (1, 2)]
            damaged += [e.thread_id for e, outcome in zip(entries, outcomes, strict=True) if outcome == 3]
            purged_ids += [e.thread_id for e, outcome in zip(entries, outcomes, strict=True) if outcome == 1]
            expired += sum(1 for outcome in outcomes if outcome == 2)
            kept += sum(1 for outcome in outcomes if outcome == 0)
            if not dry_run:
                await self._remove_entries(gone)
            done += len(entries)
            if on_progress is not None:
                on_progress(done, total)
        damaged += walk.foreign
        # Threads active more recently but expired by a shorter TTL: drop their entries too.
        walk = self._walk(newest_first=False, low=cutoff_ms + 1, high=float("inf"))
        while not walk.done:
            entries = await walk.batch()
            pipe = self._redis.pipeline(transaction=False)
            for entry in entries:
                pipe.exists(*self._keyspace.thread(entry.thread_id).owned)
            with self._errors():
                present = await pipe.execute() if entries else []
            gone = [e for e, here in zip(entries, present, strict=True) if not here]
            expired += len(gone)
            if not dry_run:
                await self._remove_entries(gone)
            done += len(entries)
            if on_progress is not None:
                on_progress(done, total)
        if not dry_run:
            with self._errors():
                if not await self._redis.exists(self._index):
                    await self._redis.delete(self._keyspace.labels_complete)  # nothing of the prefix is left
        return PurgeResult(
            from_ms(cutoff_ms) or EPOCH, dry_run, len(purged_ids), expired, kept, tuple(damaged), tuple(purged_ids)
        )

    @traced("registry.reindex")
    async def reindex(self, *, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Enter every registered thread in the indexes of its labels; returns how many threads it read.

        For threads written before label indexes existed (writers keep them since). Safe while
        the application runs and safe to repeat; when it is done, ``list_threads(labels=...)``
        and ``erase`` read the indexes instead of every registry entry.
        """
        total = await self.count()
        done = 0
        walk = self._walk(newest_first=False, low=float("-inf"), high=float("inf"))
        while not walk.done:
            described = await self._described(await walk.batch())
            pipe = self._redis.pipeline(transaction=False)
            for thread in described:
                for key in self._keyspace.label_indexes(thread.labels):
                    # GT: never move an entry a writer has just made newer back in time.
                    pipe.zadd(key, {thread.entry.thread_id: thread.entry.score}, gt=True)
            with self._errors():
                await pipe.execute()
            done += len(described)
            if on_progress is not None:
                on_progress(done, total)
        with self._errors():
            await self._redis.set(self._keyspace.labels_complete, "complete")
        return done

    @traced("registry.erase")
    async def erase(
        self,
        *,
        labels: Mapping[str, str],
        dry_run: bool = False,
        on_progress: Callable[[int], Awaitable[None] | None] | None = None,
    ) -> ErasureReceipt:
        """Delete every thread carrying all of ``labels`` (e.g. one user's), with a receipt of what was erased.

        Every key of each thread (messages, summary, session snapshot, bookkeeping) and every
        registry and label index entry naming it. A thread an index of those labels names is
        erased even if its meta hash is gone or damaged. A thread of those labels written while
        the erasure runs, or a key of an erased thread written again (a session snapshot saved
        meanwhile), is erased too and listed in ``written_during``. The receipt is ``complete``
        only when a final check finds no key of any erased thread and no other thread of those
        labels; running it again finds nothing. ``dry_run``: nothing is deleted and the receipt
        says what would be. ``on_progress(erased so far)`` (a function or a coroutine function)
        runs after each batch.
        """
        filters = validate_labels(labels, name="labels")
        if not filters:
            raise ValueError("labels must name at least one label: erase never deletes a whole prefix")
        started = await self.now()
        # Ordered sets: an id found again in a later round is recorded once.
        erased: dict[str, None] = {}
        during: dict[str, None] = {}
        unverified: dict[str, None] = {}
        remaining: list[str] = []
        keys = messages = 0
        complete = False
        done = 0
        # Each round erases whatever carries the labels now (a thread written meanwhile, or one
        # written again after an earlier round erased it) and whatever key of an erased thread
        # exists again; the round that finds nothing is the final check.
        for round_ in range(_ERASE_ROUNDS + 1):
            found, unsure = await self._erasable(filters)
            unverified.update(dict.fromkeys(unsure))
            targets = dict.fromkeys(found)
            if not dry_run:
                targets.update(dict.fromkeys(await self._with_keys([t for t in erased if t not in targets])))
            if not targets:
                complete = True
                break
            if round_ == _ERASE_ROUNDS:
                remaining = list(targets)
                break
            if round_:
                during.update(targets)
            erased.update(targets)
            chunks = list(targets)
            for start in range(0, len(chunks), _BATCH):
                chunk = chunks[start : start + _BATCH]
                with self._errors():
                    counted = await (
                        self._count_keys(chunk) if dry_run else delete_threads(self._redis, self._keyspace, chunk)
                    )
                keys += counted.keys
                messages += counted.messages
                done += len(chunk)
                if on_progress is not None:
                    reported = on_progress(done)
                    if isinstance(reported, Awaitable):
                        await reported
            if dry_run:
                complete = True
                break
        return ErasureReceipt(
            labels=filters,
            dry_run=dry_run,
            thread_ids=tuple(erased),
            written_during=tuple(during),
            keys_deleted=keys,
            messages_deleted=messages,
            started_at=started,
            finished_at=await self.now(),
            complete=complete,
            remaining=tuple(remaining),
            unverified=tuple(t for t in unverified if t not in erased),
        )

    @traced("registry.fork")
    async def fork(self, thread_id: str, new_thread_id: str | None = None, *, upto: int | None = None) -> str:
        """Copy a thread (all its messages, or the first ``upto``) into a new one; returns the new id.

        See ``RedisChatMessageStore.fork``.
        """
        return await fork_thread(
            self._redis,
            self._keyspace,
            thread_id,
            new_thread_id,
            upto=upto,
            encryption=self._encryption,
            where=self._where(),
        )

    async def _erasable(self, filters: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """The threads ``erase(labels=filters)`` deletes now, and those it cannot tell (labels unreadable)."""
        key = await self._label_index_for(filters)
        via_index = key != self._index
        walk = self._walk(newest_first=True, low=float("-inf"), high=float("inf"), key=key)
        found: dict[str, None] = {}
        unsure: dict[str, None] = {}
        while not walk.done:
            for thread in await self._described(await walk.batch(), key):
                verdict = thread.verdict(filters, via_index=via_index)
                if verdict == "unverified":
                    unsure[thread.entry.thread_id] = None
                elif verdict is not None:  # listed, or damaged: erasing is always safe
                    found[thread.entry.thread_id] = None
        return list(found), list(unsure)

    async def _with_keys(self, thread_ids: Sequence[str]) -> list[str]:
        """Those of ``thread_ids`` that own any key now (EXISTS over every key of each, in bounded batches)."""
        present: list[str] = []
        for start in range(0, len(thread_ids), _BATCH):
            chunk = thread_ids[start : start + _BATCH]
            pipe = self._redis.pipeline(transaction=False)
            for thread_id in chunk:
                pipe.exists(*self._keyspace.thread(thread_id).owned)
            with self._errors():
                counts = await pipe.execute()
            present.extend(t for t, count in zip(chunk, counts, strict=True) if count)
        return present

    async def _count_keys(self, thread_ids: Sequence[str]) -> Deleted:
        """What deleting these threads would delete (for a dry run)."""
        pipe = self._redis.pipeline(transaction=False)
        for thread_id in thread_ids:
            keys = self._keyspace.thread(thread_id)
            pipe.exists(*keys.owned)
            pipe.llen(keys.messages)
        replies = await pipe.execute()
        existing = replies[::2]
        return Deleted(sum(1 for n in existing if n), sum(existing), sum(replies[1::2]))

    # -- internals -----------------------------------------------------------------------

    def _errors(self, key: str | None = None) -> AbstractContextManager[None]:
        return _redis_errors(self._where(), key or self._index)

    def _walk(
        self, *, newest_first: bool, low: float, high: float, after: _Position | None = None, key: str | None = None
    ) -> _Walk:
        return _Walk(
            self._redis,
            key or self._index,
            newest_first=newest_first,
            low=low,
            high=high,
            after=after,
            where=self._where(),
        )

    async def _since_ms(self, active_since: datetime | timedelta | None) -> float:
        if active_since is None:
            return float("-inf")
        if isinstance(active_since, timedelta):
            return to_ms(await self.now() - active_since)
        if isinstance(active_since, datetime):
            return to_ms(active_since)
        raise TypeError(f"active_since must be a datetime, a timedelta or None, got {type(active_since).__name__}")

    async def _described(self, entries: list[_Entry], key: str | None = None) -> list[_Described]:
        """The entries (of ``key``, default the registry) whose thread still owns a key, as far as known.

        A thread whose meta hash is gone is described by its message count and the entry's
        score; a damaged one by its labels, if they can be read. Entries of threads that own
        no key any more (expired by TTL) are removed from ``key``.
        """
        if not entries:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            pipe.hmget(self._keyspace.thread(entry.thread_id).meta, ThreadMeta.FIELDS)
        with self._errors():
            metas = wrong_type_kept(await pipe.execute(raise_on_error=False))
        described: dict[int, _Described] = {}
        unread: list[tuple[int, dict[str, str] | None]] = []  # no meta hash (or no 'active' in it)
        for position, (entry, raw_meta) in enumerate(zip(entries, metas, strict=True)):
            meta_key = self._keyspace.thread(entry.thread_id).meta
            if isinstance(raw_meta, Exception):  # the meta key holds another type
                described[position] = _Described(entry, None, None)
                continue
            try:
                meta = ThreadMeta.decode(raw_meta, key=meta_key)
            except CorruptThreadMetaError:
                described[position] = _Described(entry, None, _readable_labels(raw_meta[-1], meta_key))
                continue
            labels = meta.labels if raw_meta[-1] is not None else None
            if meta.present:
                described[position] = _Described(entry, ThreadSummary.from_meta(entry.thread_id, meta), labels)
            else:
                unread.append((position, labels))
        stale: list[_Entry] = []
        if unread:
            # Evicted or expired? A thread is every key it owns: one left keeps the entry.
            pipe = self._redis.pipeline(transaction=False)
            for position, _ in unread:
                keys = self._keyspace.thread(entries[position].thread_id)
                pipe.exists(*keys.owned)
                pipe.llen(keys.messages)
            with self._errors():
                found = wrong_type_kept(await pipe.execute(raise_on_error=False))
            for (position, labels), existing, length in zip(unread, found[::2], found[1::2], strict=True):
                entry = entries[position]
                if not existing:
                    stale.append(entry)
                    continue
                count = 0 if isinstance(length, Exception) else int(length)
                summary = ThreadSummary(entry.thread_id, count, None, from_ms(entry.score), None, labels or {})
                described[position] = _Described(entry, summary, labels)
        with suppress(RedisPermissionError):  # a read-only ACL user lists without pruning; a writer's listing will
            await self._remove_entries(stale, key)
        return [described[position] for position in sorted(described)]

    async def _remove_entries(self, entries: list[_Entry], key: str | None = None) -> None:
        """Remove entries of ``key`` (default the registry), each only if its score is still the one read."""
        if not entries:
            return
        call = prune_registry(key or self._index, [(entry.member, entry.score) for entry in entries])
        with self._errors():
            await call.run(self._redis)

    async def _label_index_for(self, labels: Mapping[str, str]) -> str:
        """The smallest index of ``labels`` to page through, or the registry (no labels, or the
        label indexes are not complete yet: ``reindex``)."""
        if not labels:
            return self._index
        keys = self._keyspace.label_indexes(labels)
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(self._keyspace.labels_complete)
        for key in keys:
            pipe.zcard(key)
        with self._errors():
            complete, *sizes = await pipe.execute()
        if not complete:
            return self._index
        return min(zip(sizes, keys, strict=True))[1]

    async def _labels_of(self, entries: Sequence[_Entry]) -> list[dict[str, str]]:
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            pipe.hget(self._keyspace.thread(entry.thread_id).meta, "labels")
        with self._errors():
            replies = wrong_type_kept(await pipe.execute(raise_on_error=False))
        # A meta key of another type has no labels to unindex: PURGE_THREAD keeps the thread anyway.
        return [{} if isinstance(raw, Exception) else decode_labels(raw) for raw in replies]

    async def _unindex(self, threads: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        """Redis Cluster: take threads out of their label indexes (other slots than their keys)."""
        pipe = self._redis.pipeline(transaction=False)
        for thread_id, labels in threads:
            for key in self._keyspace.label_indexes(labels):
                pipe.zrem(key, thread_id)
        with self._errors():
            await pipe.execute()
