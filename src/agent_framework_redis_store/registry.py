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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from redis.commands.core import AsyncScript

from .cluster import is_cluster
from .codec import message_from_dict
from .connections import ClientOwner, RedisClient
from .encryption import MessageEncryption, decrypt_entry, validate_encryption
from .errors import CorruptMessageError, ThreadNotFoundError, ThreadRecordError, translate_redis_errors
from .keys import (
    batches_key,
    fingerprints_key,
    meta_key,
    registry_key,
    session_key,
    thread_key,
    validate_key_prefix,
    validate_thread_id,
)
from .lua import IMPORT_THREAD, PRUNE_REGISTRY, PURGE_THREAD, REGISTRY_AFTER

__all__ = [
    "PurgeResult",
    "RedisThreadRegistry",
    "RegistryStats",
    "ThreadInfo",
    "ThreadPage",
    "ThreadRecord",
    "ThreadSummary",
    "validate_labels",
]

RECORD_VERSION = 1
# Registry entries read per round trip: bounds memory, amortises latency.
_BATCH = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def validate_labels(labels: object, *, name: str = "labels") -> dict[str, str] | None:
    """Return ``labels`` as a plain dict if every key and value is a str, else raise naming the entry."""
    if labels is None:
        return None
    if not isinstance(labels, Mapping):
        raise TypeError(f"{name} must be a dict of str to str, got {type(labels).__name__}")
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name} keys must be non-empty str, got {key!r}")
        if "=" in key:
            # The CLI filters with KEY=VALUE; a key holding '=' could never be matched.
            raise ValueError(f"{name} key {key!r} must not contain '='")
        if not isinstance(value, str):
            raise TypeError(f"{name}[{key!r}] must be a str, got {type(value).__name__}")
        checked[key] = value
    return checked


def labels_json(labels: Mapping[str, str] | None) -> str:
    """The labels as stored in the meta hash ('' for None: keep whatever is stored)."""
    if labels is None:
        return ""
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"), ensure_ascii=False)


def _from_ms(value: object) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(milliseconds=int(value))  # type: ignore[call-overload]


def _to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"datetime {moment.isoformat()} must be timezone-aware")
    return (moment - _EPOCH) // _MS


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


# The meta hash fields a listing reads (HMGET: fewer reply elements to parse than HGETALL).
_META_FIELDS = ("count", "created", "active", "ttl", "labels")


def _decode_meta(raw: Mapping[Any, Any] | Sequence[Any]) -> dict[str, str]:
    """A meta hash from HGETALL (a mapping) or HMGET of ``_META_FIELDS`` (a list)."""
    pairs = raw.items() if isinstance(raw, Mapping) else zip(_META_FIELDS, raw, strict=True)
    return {_text(k): _text(v) for k, v in pairs if v is not None}


def _meta_labels(meta: Mapping[str, str]) -> dict[str, str]:
    try:
        labels = json.loads(meta.get("labels") or "{}")
    except ValueError:
        return {}
    return labels if isinstance(labels, dict) else {}


def _seconds(ms: object) -> float | None:
    value = int(ms) if ms not in (None, "") else 0  # type: ignore[call-overload]
    return value / 1000 if value > 0 else None


@dataclass(frozen=True)
class ThreadSummary:
    """One thread as the registry records it."""

    thread_id: str
    message_count: int
    created_at: datetime | None
    last_active: datetime | None
    ttl: float | None
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (timestamps as ISO 8601 UTC)."""
        return {
            "thread_id": self.thread_id,
            "message_count": self.message_count,
            "created_at": _iso(self.created_at),
            "last_active": _iso(self.last_active),
            "ttl": self.ttl,
            "labels": self.labels,
        }

    @classmethod
    def _from_meta(cls, thread_id: str, meta: Mapping[str, str]) -> Self:
        return cls(
            thread_id=thread_id,
            message_count=int(meta.get("count") or 0),
            created_at=_from_ms(meta.get("created")),
            last_active=_from_ms(meta.get("active")),
            ttl=_seconds(meta.get("ttl")),
            labels=_meta_labels(meta),
        )


@dataclass(frozen=True)
class ThreadInfo:
    """One thread in detail: ``RedisChatMessageStore.info()`` and ``RedisThreadRegistry.info()``.

    ``ttl`` is the configured sliding expiry, ``ttl_remaining`` what is left of it now;
    ``approximate_bytes`` is Redis' ``MEMORY USAGE`` of the thread's keys (None where that
    command is not allowed). A thread that does not exist has ``message_count`` 0.
    """

    thread_id: str
    key_prefix: str
    message_count: int
    created_at: datetime | None
    last_active: datetime | None
    ttl: float | None
    ttl_remaining: float | None
    labels: dict[str, str]
    approximate_bytes: int | None

    @property
    def exists(self) -> bool:
        """True if the thread holds messages."""
        return self.message_count > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (timestamps as ISO 8601 UTC)."""
        return {
            "thread_id": self.thread_id,
            "key_prefix": self.key_prefix,
            "message_count": self.message_count,
            "created_at": _iso(self.created_at),
            "last_active": _iso(self.last_active),
            "ttl": self.ttl,
            "ttl_remaining": self.ttl_remaining,
            "labels": self.labels,
            "approximate_bytes": self.approximate_bytes,
        }


async def read_thread_info(redis: RedisClient, key_prefix: str, thread_id: str) -> ThreadInfo:
    """One round trip (a pipeline on the thread's hash slot) that describes a thread."""
    keys = (thread_key(key_prefix, thread_id), meta_key(key_prefix, thread_id), batches_key(key_prefix, thread_id))
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys[1])
    pipe.llen(keys[0])
    pipe.pttl(keys[0])
    for key in keys:
        pipe.memory_usage(key)
    raw_meta, length, pttl, *usage = await pipe.execute(raise_on_error=False)
    for reply in (raw_meta, length, pttl):
        if isinstance(reply, Exception):
            raise reply
    meta = _decode_meta(raw_meta)
    sizes = [size for size in usage if not isinstance(size, Exception)]
    return ThreadInfo(
        thread_id=thread_id,
        key_prefix=key_prefix,
        message_count=int(length),
        created_at=_from_ms(meta.get("created")),
        last_active=_from_ms(meta.get("active")),
        ttl=_seconds(meta.get("ttl")),
        ttl_remaining=pttl / 1000 if pttl > 0 else None,
        labels=_meta_labels(meta),
        approximate_bytes=sum(int(s or 0) for s in sizes) if len(sizes) == len(usage) else None,
    )


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
            "cutoff": _iso(self.cutoff),
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
            "oldest_activity": _iso(self.oldest_activity),
            "newest_activity": _iso(self.newest_activity),
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
    thread's messages and their order, its labels, timestamps and TTL.
    """

    thread_id: str
    messages: list[dict[str, Any]]
    labels: dict[str, str]
    created_at: datetime | None
    last_active: datetime | None
    ttl: float | None
    ttl_remaining: float | None

    def to_json(self) -> str:
        """The record as one line of compact JSON (no trailing newline)."""
        record = {
            "version": RECORD_VERSION,
            "thread_id": self.thread_id,
            "labels": self.labels,
            "created_at": _iso(self.created_at),
            "last_active": _iso(self.last_active),
            "ttl": self.ttl,
            "ttl_remaining": self.ttl_remaining,
            "messages": self.messages,
        }
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
        return cls(
            thread_id=thread_id,
            messages=messages,
            labels=labels,
            created_at=_parse_time(data.get("created_at"), "created_at"),
            last_active=_parse_time(data.get("last_active"), "last_active"),
            ttl=_parse_seconds(data.get("ttl"), "ttl"),
            ttl_remaining=_parse_seconds(data.get("ttl_remaining"), "ttl_remaining"),
        )


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
        after_script: AsyncScript,
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
        self._after_script = after_script
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
        flat = await self._after_script(
            keys=[self._key], args=[int(self._newest_first), after.score, after.member, size]
        )
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
        key_prefix: The prefix the stores write under.
        redis_client: A ``redis.asyncio`` client to use instead (never closed by the registry).
        encryption: The stores' ``encryption=``: export decrypts (the export holds plaintext),
            import encrypts for the destination thread.
        **connection: ``ConnectionSettings`` fields (host, port, username, password, ...).
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        key_prefix: str = "chat_messages",
        redis_client: RedisClient | None = None,
        encryption: MessageEncryption | None = None,
        **connection: Any,
    ) -> None:
        self._key_prefix = validate_key_prefix(key_prefix)
        self._encryption = validate_encryption(encryption)
        self._open_client(redis_client, redis_url=redis_url, **connection)
        self._index = registry_key(self._key_prefix)
        self._purge_thread = self._redis.register_script(PURGE_THREAD)
        self._prune = self._redis.register_script(PRUNE_REGISTRY)
        self._import = self._redis.register_script(IMPORT_THREAD)
        self._walk_after = self._redis.register_script(REGISTRY_AFTER)

    @property
    def key_prefix(self) -> str:
        """The key prefix this registry reads."""
        return self._key_prefix

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
        return _EPOCH + timedelta(seconds=seconds, microseconds=micros)

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
        validate_thread_id(thread_id)
        with self._errors(thread_key(self._key_prefix, thread_id)):
            info = await read_thread_info(self._redis, self._key_prefix, thread_id)
        if not info.exists:
            raise ThreadNotFoundError(thread_id, self._key_prefix)
        return info

    async def missing(self, thread_ids: Iterable[str]) -> list[str]:
        """Those of ``thread_ids`` that do not exist, in the order given."""
        ids = [validate_thread_id(t) for t in thread_ids]
        absent: list[str] = []
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            pipe = self._redis.pipeline(transaction=False)
            for thread_id in chunk:
                pipe.exists(thread_key(self._key_prefix, thread_id))
            with self._errors():
                found = await pipe.execute()
            absent.extend(t for t, present in zip(chunk, found, strict=True) if not present)
        return absent

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
                pipe.memory_usage(thread_key(self._key_prefix, entry.thread_id))
                pipe.memory_usage(meta_key(self._key_prefix, entry.thread_id))
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

    async def export_thread(self, thread_id: str) -> ThreadRecord:
        """A consistent snapshot of one thread; raises ``ThreadNotFoundError`` if absent."""
        validate_thread_id(thread_id)
        if is_cluster(self._redis):
            # redis-py queues a cluster transaction's commands on a throwaway event loop: the
            # client must know the topology already, or it opens its connections there.
            await self._redis.initialize()
        pipe = self._redis.pipeline(transaction=True)
        pipe.lrange(thread_key(self._key_prefix, thread_id), 0, -1)
        pipe.hgetall(meta_key(self._key_prefix, thread_id))
        pipe.pttl(thread_key(self._key_prefix, thread_id))
        with self._errors(thread_key(self._key_prefix, thread_id)):
            payloads, raw_meta, pttl = await pipe.execute()
        if not payloads:
            raise ThreadNotFoundError(thread_id, self._key_prefix)
        meta = _decode_meta(raw_meta)
        return ThreadRecord(
            thread_id=thread_id,
            messages=[self._message(thread_id, index, payload) for index, payload in enumerate(payloads)],
            labels=_meta_labels(meta),
            created_at=_from_ms(meta.get("created")),
            last_active=_from_ms(meta.get("active")),
            ttl=_seconds(meta.get("ttl")),
            ttl_remaining=pttl / 1000 if pttl > 0 else None,
        )

    # -- writing -------------------------------------------------------------------------

    async def import_thread(self, record: ThreadRecord, *, replace: bool = False) -> bool:
        """Write an exported thread in one atomic step; False if it exists and not ``replace``."""
        now_ms = _to_ms(await self.now()) if record.created_at is None or record.last_active is None else 0
        created = _to_ms(record.created_at) if record.created_at else now_ms
        active = _to_ms(record.last_active) if record.last_active else now_ms
        ttl_ms = int(record.ttl * 1000) if record.ttl else 0
        expire_ms = int(record.ttl_remaining * 1000) if record.ttl_remaining else ttl_ms
        prefix, thread_id = self._key_prefix, record.thread_id
        payloads = [json.dumps(m, separators=(",", ":"), ensure_ascii=False) for m in record.messages]
        if self._encryption is not None:
            payloads = [self._encryption.encrypt(p, context=thread_key(prefix, thread_id)) for p in payloads]
        keys = [
            thread_key(prefix, thread_id),
            batches_key(prefix, thread_id),
            meta_key(prefix, thread_id),
            fingerprints_key(prefix, thread_id),
            self._index,
        ]
        args = [thread_id, int(replace), created, active, ttl_ms, expire_ms, labels_json(record.labels)]
        with self._errors(keys[0]):
            if is_cluster(self._redis):
                # The registry is in another slot: the thread first, then its entry.
                imported = bool(await self._import(keys=keys[:-1], args=[*args, *payloads]))
                if imported:
                    await self._redis.zadd(self._index, {thread_id: active})
                return imported
            return bool(await self._import(keys=keys, args=[*args, *payloads]))

    def _message(self, thread_id: str, index: int, payload: bytes) -> dict[str, Any]:
        """One stored entry as its message object; ``CorruptMessageError`` naming key and index if it is not one."""
        key = thread_key(self._key_prefix, thread_id)
        opened = decrypt_entry(self._encryption, payload, key=key, index=index)
        try:
            # Entries are UTF-8; json.loads would guess UTF-16 or UTF-32 for some damaged bytes.
            data = json.loads(opened.decode("utf-8") if isinstance(opened, bytes) else opened)
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            message_from_dict(data)  # an export that import would refuse is found out now, not at restore
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise CorruptMessageError(key, index, f"{type(err).__name__}: {err}") from err
        return data

    async def delete(self, thread_ids: Sequence[str]) -> int:
        """Delete threads and their registry entries; returns how many existed."""
        ids = [validate_thread_id(t) for t in thread_ids]
        deleted = 0
        for start in range(0, len(ids), _BATCH):
            if is_cluster(self._redis):
                deleted += await self._delete_apart(ids[start : start + _BATCH])
                continue
            # MULTI/EXEC: no append can recreate a thread between its DEL and its ZREM.
            pipe = self._redis.pipeline(transaction=True)
            for thread_id in ids[start : start + _BATCH]:
                pipe.delete(*self._thread_keys(thread_id))
                pipe.zrem(self._index, thread_id)
            with self._errors():
                replies = await pipe.execute()
            deleted += sum(1 for reply in replies[::2] if reply)
        return deleted

    async def _delete_apart(self, thread_ids: list[str]) -> int:
        # Redis Cluster: no MULTI/EXEC spans the registry and the threads (other slots). The
        # entries go first, so a thread an append recreates meanwhile is entered again by it.
        entries = self._redis.pipeline(transaction=False)
        threads = self._redis.pipeline(transaction=False)
        for thread_id in thread_ids:
            entries.zrem(self._index, thread_id)
            threads.delete(*self._thread_keys(thread_id))
        with self._errors():
            await entries.execute()
            replies = await threads.execute()
        return sum(1 for reply in replies if reply)

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
        now_ms = _to_ms(await self.now())
        cutoff_ms = _as_cutoff_ms(now_ms, older_than)
        with self._errors():
            total = int(await self._redis.zcard(self._index))
        done = purged = expired = kept = 0
        walk = self._walk(newest_first=False, low=float("-inf"), high=cutoff_ms)
        while not walk.done:
            entries = await walk.batch()
            if not entries:
                continue
            pipe = self._redis.pipeline(transaction=False)
            for entry in entries:
                if dry_run:
                    # Nothing changes, so nothing to do atomically: does the thread still exist?
                    pipe.exists(meta_key(self._key_prefix, entry.thread_id))
                elif not is_cluster(self._redis):
                    await self._purge_thread(keys=self._thread_keys(entry.thread_id), args=[cutoff_ms], client=pipe)  # pyright: ignore[reportArgumentType]
            with self._errors():
                if dry_run or not is_cluster(self._redis):
                    replies = await pipe.execute()
                else:  # Redis Cluster runs no script in a pipeline: one per thread, all at once
                    replies = await asyncio.gather(
                        *(self._purge_thread(keys=self._thread_keys(e.thread_id), args=[cutoff_ms]) for e in entries)
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
                pipe.exists(meta_key(self._key_prefix, entry.thread_id))
            with self._errors():
                present = await pipe.execute() if entries else []
            gone = [e for e, here in zip(entries, present, strict=True) if not here]
            expired += len(gone)
            if not dry_run:
                await self._remove_entries(gone)
            done += len(entries)
            if on_progress is not None:
                on_progress(done, total)
        return PurgeResult(_from_ms(cutoff_ms) or _EPOCH, dry_run, purged, expired, kept)

    # -- internals -----------------------------------------------------------------------

    def _errors(self, key: str | None = None) -> AbstractContextManager[None]:
        return _redis_errors(self._where(), key or self._index)

    def _walk(self, *, newest_first: bool, low: float, high: float, after: _Position | None = None) -> _Walk:
        return _Walk(
            self._redis,
            self._index,
            self._walk_after,
            newest_first=newest_first,
            low=low,
            high=high,
            after=after,
            where=self._where(),
        )

    def _thread_keys(self, thread_id: str) -> list[str]:
        """Every key of a thread: messages and meta first (as PURGE_THREAD expects), then the rest.

        The session snapshot of a 1.x ``RedisSessionStore`` with the same id and prefix is
        part of the same conversation, so deleting or purging the thread removes it too.
        """
        prefix = self._key_prefix
        return [
            thread_key(prefix, thread_id),
            meta_key(prefix, thread_id),
            batches_key(prefix, thread_id),
            fingerprints_key(prefix, thread_id),
            session_key(prefix, thread_id),
        ]

    async def _since_ms(self, active_since: datetime | timedelta | None) -> float:
        if active_since is None:
            return float("-inf")
        if isinstance(active_since, timedelta):
            return _to_ms(await self.now() - active_since)
        if isinstance(active_since, datetime):
            return _to_ms(active_since)
        raise TypeError(f"active_since must be a datetime, a timedelta or None, got {type(active_since).__name__}")

    async def _described(self, entries: list[_Entry]) -> list[tuple[_Entry, ThreadSummary]]:
        """The entries whose thread still exists, with its summary; stale entries are removed."""
        if not entries:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            pipe.hmget(meta_key(self._key_prefix, entry.thread_id), _META_FIELDS)
        with self._errors():
            metas = await pipe.execute()
        described: list[tuple[_Entry, ThreadSummary]] = []
        stale: list[_Entry] = []
        for entry, raw_meta in zip(entries, metas, strict=True):
            meta = _decode_meta(raw_meta)
            if meta:
                described.append((entry, ThreadSummary._from_meta(entry.thread_id, meta)))
            else:
                stale.append(entry)
        await self._remove_entries(stale)
        return described

    async def _remove_entries(self, entries: list[_Entry]) -> None:
        """Remove registry entries, each only if its score is still the one read."""
        if not entries:
            return
        args: list[Any] = []
        for entry in entries:
            args.extend((entry.member, entry.score))
        with self._errors():
            await self._prune(keys=[self._index], args=args)
