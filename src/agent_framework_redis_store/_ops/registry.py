"""The thread registry: which threads exist under a key prefix, how big, how old, for whom.

The store keeps it itself: every append updates the thread's meta hash
(``{prefix}:{<id>}:meta``) and the prefix-wide sorted set ``{prefix}:registry`` (thread id
scored by last activity in milliseconds) in the same round trip. ``RedisThreadRegistry``
reads it by paging through that sorted set, a bounded batch at a time, so listing, purging
and counting 100,000 threads needs constant memory and never uses KEYS or SCAN. Threads
that expired by TTL leave a stale registry entry behind, which reads skip and remove.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self, Unpack

from .._core.cluster import RedisClient, is_cluster
from .._core.codec import decode_entry, encode_message_dict, message_from_dict
from .._core.connection import ClientOwner
from .._core.encryption import MessageEncryption
from .._core.errors import ThreadNotFoundError, ThreadRecordError, translate_redis_errors
from .._core.groups import CharacterEstimator, index_entry, shape
from .._core.keyspace import Keyspace, validate_thread_id
from .._core.lua import PURGE_THREAD, import_thread, prune_registry, purge_thread, registry_after
from .._core.meta import (
    EPOCH,
    ThreadInfo,
    ThreadMeta,
    ThreadSummary,
    from_ms,
    iso,
    read_thread_info,
    to_ms,
)
from .._core.options import RegistryOptions, labels_json, parse_options, validate_labels
from .._core.telemetry import traced

__all__ = [
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


@dataclass(frozen=True)
class ThreadPage:
    """A page of ``list_threads``; pass ``next_cursor`` back for the next (None: no more)."""

    threads: list[ThreadSummary]
    next_cursor: str | None


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "cutoff": iso(self.cutoff),
            "dry_run": self.dry_run,
            "purged": self.purged,
            "expired": self.expired,
            "kept": self.kept,
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
        }


def _length_bucket(length: int) -> str:
    if length <= 1:
        return "1"
    upper = 10
    while length > upper:
        upper *= 10
    return f"{upper // 10 + 1}-{upper}"


@dataclass(frozen=True)
class ThreadRecord:
    """One exported thread: one line of an export file (JSON Lines).

    Messages are the stored JSON objects, unchanged; importing a record reproduces the
    thread's messages and their order, its labels, timestamps and TTL, and its summary
    (``summary``: the summary message, standing for the first ``summary_covers`` messages).
    """

    thread_id: str
    messages: list[dict[str, Any]]
    labels: dict[str, str]
    created_at: datetime | None
    last_active: datetime | None
    ttl: float | None
    ttl_remaining: float | None
    summary: dict[str, Any] | None = None
    summary_covers: int = 0

    def to_json(self) -> str:
        """The record as one line of compact JSON (no trailing newline)."""
        record = {
            "version": RECORD_VERSION,
            "thread_id": self.thread_id,
            "labels": self.labels,
            "created_at": iso(self.created_at),
            "last_active": iso(self.last_active),
            "ttl": self.ttl,
            "ttl_remaining": self.ttl_remaining,
            "messages": self.messages,
        }
        if self.summary is not None:
            record["summary"] = {"message": self.summary, "covers": self.summary_covers}
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str | bytes) -> Self:
        """Parse and check one line; raises ``ThreadRecordError`` naming the bad field."""
        try:
            data = json.loads(line)
        except ValueError as err:
            raise ThreadRecordError(f"not JSON ({err})") from err
        if not isinstance(data, dict):
            raise ThreadRecordError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("version", RECORD_VERSION) != RECORD_VERSION:
            raise ThreadRecordError(f"'version' is {data.get('version')!r}; this version reads {RECORD_VERSION}")
        try:
            thread_id = validate_thread_id(data.get("thread_id"))
            labels = validate_labels(data.get("labels") or {}) or {}
        except (TypeError, ValueError) as err:
            raise ThreadRecordError(str(err)) from err
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ThreadRecordError("'messages' must be a non-empty list of message objects")
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ThreadRecordError(f"messages[{index}] must be an object, got {type(message).__name__}")
            try:
                message_from_dict(message)
            except (TypeError, ValueError, KeyError, AttributeError) as err:
                raise ThreadRecordError(f"messages[{index}] is not a message: {err}") from err
        summary, covers = _parse_summary(data.get("summary"), len(messages))
        return cls(
            thread_id=thread_id,
            messages=messages,
            labels=labels,
            created_at=_parse_time(data.get("created_at"), "created_at"),
            last_active=_parse_time(data.get("last_active"), "last_active"),
            ttl=_parse_seconds(data.get("ttl"), "ttl"),
            ttl_remaining=_parse_seconds(data.get("ttl_remaining"), "ttl_remaining"),
            summary=summary,
            summary_covers=covers,
        )


def _parse_summary(value: object, count: int) -> tuple[dict[str, Any] | None, int]:
    if value is None:
        return None, 0
    if not isinstance(value, dict) or not isinstance(value.get("message"), dict):
        raise ThreadRecordError("'summary' must be an object with a 'message' object and 'covers'")
    covers = value.get("covers")
    if isinstance(covers, bool) or not isinstance(covers, int) or not 0 <= covers <= count:
        raise ThreadRecordError(f"'summary.covers' must be an int from 0 to {count} (the messages), got {covers!r}")
    try:
        message_from_dict(value["message"])
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise ThreadRecordError(f"'summary.message' is not a message: {err}") from err
    return value["message"], covers


def _parse_time(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ThreadRecordError(f"'{name}' must be an ISO 8601 time string or null, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise ThreadRecordError(f"'{name}' is not an ISO 8601 time: {value!r}") from err
    if moment.tzinfo is None:
        raise ThreadRecordError(f"'{name}' must carry a timezone (e.g. 'Z'): {value!r}")
    return moment


def _parse_seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ThreadRecordError(f"'{name}' must be a positive number of seconds or null, got {value!r}")
    return float(value)


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
            entries.append(_Entry(member, score))
        if entries:
            self._after = entries[-1].position
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


def _as_cutoff_ms(now_ms: int, older_than: timedelta | float) -> int:
    seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"older_than must be a non-negative timedelta or number of seconds, got {older_than!r}")
    return now_ms - int(seconds * 1000)


class RedisThreadRegistry(ClientOwner):
    """Lists, inspects, exports, imports, deletes and purges the threads of one key prefix.

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

        ``labels`` keeps threads carrying all those labels; ``active_since`` (a time, or a
        duration back from now) keeps recently active ones. Expired threads are skipped and
        their registry entries removed.
        """
        filters = validate_labels(labels, name="labels") or {}
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        after = _Position.decode(cursor) if cursor is not None else None
        low = await self._since_ms(active_since)
        walk = self._walk(newest_first=True, low=low, high=float("inf"), after=after)
        found: list[ThreadSummary] = []
        # Unfiltered, one extra entry tells whether another page exists.
        size = _BATCH if filters else min(_BATCH, limit + 1)
        while not walk.done:
            described = await self._described(await walk.batch(size))
            for index, (entry, summary) in enumerate(described):
                if all(summary.labels.get(k) == v for k, v in filters.items()):
                    found.append(summary)
                    if len(found) == limit:
                        last = walk.done and index == len(described) - 1
                        return ThreadPage(found, None if last else entry.position.encode())
        return ThreadPage(found, None)

    async def iter_threads(
        self, *, labels: Mapping[str, str] | None = None, active_since: datetime | timedelta | None = None
    ) -> AsyncIterator[ThreadSummary]:
        """Every matching thread, newest activity first, read a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.list_threads(labels=labels, active_since=active_since, limit=_BATCH, cursor=cursor)
            for summary in page.threads:
                yield summary
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def info(self, thread_id: str) -> ThreadInfo:
        """Details of one thread; raises ``ThreadNotFoundError`` if it does not exist."""
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
        """Those of ``thread_ids`` that do not exist, in the order given."""
        ids = [validate_thread_id(t) for t in thread_ids]
        absent: list[str] = []
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            pipe = self._redis.pipeline(transaction=False)
            for thread_id in chunk:
                pipe.exists(self._keyspace.thread(thread_id).messages)
            with self._errors():
                found = await pipe.execute()
            absent.extend(t for t, present in zip(chunk, found, strict=True) if not present)
        return absent

    @traced("registry.stats")
    async def stats(self) -> RegistryStats:
        """Threads, messages, approximate bytes and thread-length distribution of the prefix."""
        threads = messages = total_bytes = expired = 0
        bytes_known = True
        oldest: datetime | None = None
        newest: datetime | None = None
        buckets: dict[str, int] = {}
        walk = self._walk(newest_first=True, low=float("-inf"), high=float("inf"))
        while not walk.done:
            entries = await walk.batch()
            described = await self._described(entries)
            expired += len(entries) - len(described)
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
        )

    @traced("registry.export")
    async def export_thread(self, thread_id: str) -> ThreadRecord:
        """A consistent snapshot of one thread; raises ``ThreadNotFoundError`` if absent."""
        keys = self._keyspace.thread(thread_id)
        if is_cluster(self._redis):
            # redis-py queues a cluster transaction's commands on a throwaway event loop: the
            # client must know the topology already, or it opens its connections there.
            await self._redis.initialize()
        pipe = self._redis.pipeline(transaction=True)
        pipe.lrange(keys.messages, 0, -1)
        pipe.hgetall(keys.meta)
        pipe.pttl(keys.messages)
        with self._errors(keys.messages):
            payloads, raw_meta, pttl = await pipe.execute()
        if not payloads:
            raise ThreadNotFoundError(thread_id, self._key_prefix)
        meta = ThreadMeta.decode(raw_meta)
        summary = None
        if meta.summary is not None:
            summary = decode_entry(meta.summary, encryption=self._encryption, key=keys.summary, index=0)[0]
        return ThreadRecord(
            thread_id=thread_id,
            # Decoded into messages too: an export that import would refuse is found out now.
            messages=[
                decode_entry(payload, encryption=self._encryption, key=keys.messages, index=index)[0]
                for index, payload in enumerate(payloads)
            ],
            labels=meta.labels,
            created_at=meta.created_at,
            last_active=meta.last_active,
            ttl=meta.ttl,
            ttl_remaining=pttl / 1000 if pttl > 0 else None,
            summary=summary,
            # Positions count from the thread's first message ever; the record's from its first kept.
            summary_covers=min(max(meta.boundary - meta.first, 0), len(payloads)) if summary else 0,
        )

    # -- writing -------------------------------------------------------------------------

    @traced("registry.import")
    async def import_thread(self, record: ThreadRecord, *, replace: bool = False) -> bool:
        """Write an exported thread in one atomic step; False if it exists and not ``replace``.

        With ``replace`` every key of the existing thread (its session snapshot included) is
        replaced.
        """
        now_ms = to_ms(await self.now()) if record.created_at is None or record.last_active is None else 0
        created = to_ms(record.created_at) if record.created_at else now_ms
        active = to_ms(record.last_active) if record.last_active else now_ms
        ttl_ms = int(record.ttl * 1000) if record.ttl else 0
        keys = self._keyspace.thread(record.thread_id)
        payloads = [encode_message_dict(m) for m in record.messages]
        tokenizer = CharacterEstimator()
        index = [
            index_entry(shape(m, p, tokenizer, previous=record.messages[i - 1] if i else None))
            for i, (m, p) in enumerate(zip(record.messages, payloads, strict=True))
        ]
        summary = None if record.summary is None else encode_message_dict(record.summary)
        if self._encryption is not None:
            payloads = [self._encryption.encrypt(p, context=keys.messages) for p in payloads]
            if summary is not None:
                summary = self._encryption.encrypt(summary, context=keys.summary)
        clustered = is_cluster(self._redis)
        call = import_thread(
            keys,
            # On a Cluster the registry is in another slot: the thread first, then its entry.
            registry_key=None if clustered else self._index,
            replace=replace,
            created_ms=created,
            active_ms=active,
            ttl_ms=ttl_ms,
            expire_ms=int(record.ttl_remaining * 1000) if record.ttl_remaining else ttl_ms,
            labels=labels_json(record.labels),
            payloads=payloads,
            index=index,
            summary=summary,
            summary_boundary=record.summary_covers,
        )
        with self._errors(keys.messages):
            imported = bool(await call.run(self._redis))
            if imported and clustered:
                await self._redis.zadd(self._index, {record.thread_id: active})
        return imported

    @traced("registry.delete")
    async def delete(self, thread_ids: Sequence[str]) -> int:
        """Delete every key of each thread and its registry entry; returns how many existed."""
        ids = [validate_thread_id(t) for t in thread_ids]
        deleted = 0
        for start in range(0, len(ids), _BATCH):
            with self._errors():
                deleted += await self._keyspace.delete(self._redis, ids[start : start + _BATCH])
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

        Also removes the registry entries of threads that expired by TTL. A thread written
        to while the purge runs is kept. ``on_progress(done, total)`` is called after each
        batch. With ``dry_run`` nothing is changed and the counts say what would be.
        """
        now_ms = to_ms(await self.now())
        cutoff_ms = _as_cutoff_ms(now_ms, older_than)
        total = await self.count()
        done = purged = expired = kept = 0
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
                    # Nothing changes, so nothing to do atomically: does the thread still exist?
                    pipe.exists(self._keyspace.thread(entry.thread_id).meta)
                elif not is_cluster(self._redis):
                    purge_call = purge_thread(self._keyspace.thread(entry.thread_id), cutoff_ms=cutoff_ms)
                    purge_call.script.queue(pipe, purge_call.keys, purge_call.args)
            with self._errors():
                if dry_run or not is_cluster(self._redis):
                    replies = await pipe.execute()
                else:  # Redis Cluster runs no script in a pipeline: one per thread, all at once
                    replies = await asyncio.gather(
                        *(
                            purge_thread(self._keyspace.thread(e.thread_id), cutoff_ms=cutoff_ms).run(self._redis)
                            for e in entries
                        )
                    )
            outcomes = [1 if reply else 2 for reply in replies] if dry_run else replies
            gone = [e for e, outcome in zip(entries, outcomes, strict=True) if outcome]
            purged += sum(1 for outcome in outcomes if outcome == 1)
            expired += sum(1 for outcome in outcomes if outcome == 2)
            kept += sum(1 for outcome in outcomes if outcome == 0)
            if not dry_run:
                await self._remove_entries(gone)
            done += len(entries)
            if on_progress is not None:
                on_progress(done, total)
        # Threads active more recently but expired by a shorter TTL: drop their entries too.
        walk = self._walk(newest_first=False, low=cutoff_ms + 1, high=float("inf"))
        while not walk.done:
            entries = await walk.batch()
            pipe = self._redis.pipeline(transaction=False)
            for entry in entries:
                pipe.exists(self._keyspace.thread(entry.thread_id).meta)
            with self._errors():
                present = await pipe.execute() if entries else []
            gone = [e for e, here in zip(entries, present, strict=True) if not here]
            expired += len(gone)
            if not dry_run:
                await self._remove_entries(gone)
            done += len(entries)
            if on_progress is not None:
                on_progress(done, total)
        return PurgeResult(from_ms(cutoff_ms) or EPOCH, dry_run, purged, expired, kept)

    # -- internals -----------------------------------------------------------------------

    def _errors(self, key: str | None = None) -> AbstractContextManager[None]:
        return _redis_errors(self._where(), key or self._index)

    def _walk(self, *, newest_first: bool, low: float, high: float, after: _Position | None = None) -> _Walk:
        return _Walk(
            self._redis,
            self._index,
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

    async def _described(self, entries: list[_Entry]) -> list[tuple[_Entry, ThreadSummary]]:
        """The entries whose thread still exists, with its summary; stale entries are removed."""
        if not entries:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            pipe.hmget(self._keyspace.thread(entry.thread_id).meta, ThreadMeta.FIELDS)
        with self._errors():
            metas = await pipe.execute()
        described: list[tuple[_Entry, ThreadSummary]] = []
        stale: list[_Entry] = []
        for entry, raw_meta in zip(entries, metas, strict=True):
            meta = ThreadMeta.decode(raw_meta)
            if meta.present:
                described.append((entry, ThreadSummary.from_meta(entry.thread_id, meta)))
            else:
                stale.append(entry)
        await self._remove_entries(stale)
        return described

    async def _remove_entries(self, entries: list[_Entry]) -> None:
        """Remove registry entries, each only if its score is still the one read."""
        if not entries:
            return
        call = prune_registry(self._index, [(entry.member, entry.score) for entry in entries])
        with self._errors():
            await call.run(self._redis)
