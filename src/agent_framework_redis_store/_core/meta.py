"""A thread's metadata: the meta hash the append scripts keep, read back as typed values.

The scripts write the hash (``REGISTER_THREAD``, ``IMPORT_THREAD`` in ``lua.py``); this
module is the only reader of its fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from .cluster import RedisClient
from .errors import CorruptThreadMetaError
from .keyspace import ThreadKeys

__all__ = [
    "ThreadInfo",
    "ThreadMeta",
    "ThreadSummary",
    "decode_labels",
    "from_ms",
    "iso",
    "meta_int",
    "read_labels",
    "read_thread_info",
    "to_ms",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def from_ms(value: object) -> datetime | None:
    """A UTC time from milliseconds since the epoch (None stays None)."""
    if value is None:
        return None
    return EPOCH + timedelta(milliseconds=int(value))  # type: ignore[call-overload]


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware time."""
    if moment.tzinfo is None:
        raise ValueError(f"datetime {moment.isoformat()} must be timezone-aware")
    return (moment - EPOCH) // _MS


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds and a ``Z``, or None."""
    return None if moment is None else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seconds_from_ms(ms: object) -> float | None:
    """Seconds from a stored millisecond count; None for 0 or absent (no TTL)."""
    value = int(ms) if ms not in (None, "", b"") else 0  # type: ignore[call-overload]
    return value / 1000 if value > 0 else None


def decode_labels(raw: bytes | str | None) -> dict[str, str]:
    """The labels a meta hash stores as JSON, leniently ({} when absent or unreadable): for deleting."""
    if not raw:
        return {}
    try:
        labels = json.loads(raw)
    except ValueError:
        return {}
    return labels if isinstance(labels, dict) else {}


def _shown(value: object) -> str:
    """A damaged value in an error: its start only."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value: bytes | str, key: str, field: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptThreadMetaError(key, field, f"{_shown(value)} is not UTF-8 text") from None


def meta_int(value: bytes | str | None, *, key: str, field: str) -> int:
    """A non-negative integer field of a meta hash (absent: 0); ``CorruptThreadMetaError`` naming it if damaged."""
    if value is None or value in ("", b""):
        return 0
    try:
        number = int(value)
    except ValueError:
        raise CorruptThreadMetaError(key, field, f"{_shown(value)} is not an integer") from None
    if number < 0:
        raise CorruptThreadMetaError(key, field, f"{number} is negative")
    return number


def _time(value: str | None, *, key: str, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return from_ms(meta_int(value, key=key, field=field))
    except OverflowError:
        raise CorruptThreadMetaError(key, field, f"{_shown(value)} is out of range for a time") from None


def read_labels(raw: bytes | str | None, *, key: str) -> dict[str, str]:
    """The labels a meta hash stores as JSON ({} when absent); ``CorruptThreadMetaError`` if damaged."""
    if raw is None or raw in ("", b""):
        return {}
    try:
        labels = json.loads(raw)
    except ValueError:
        raise CorruptThreadMetaError(key, "labels", f"{_shown(raw)} is not JSON") from None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise CorruptThreadMetaError(key, "labels", f"{_shown(raw)} is not an object of string values")
    return labels


@dataclass(frozen=True)
class ThreadMeta:
    """The fields of a thread's meta hash. ``present`` is False when the hash does not exist."""

    present: bool
    count: int = 0
    created_at: datetime | None = None
    last_active: datetime | None = None
    ttl: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    first: int = 0
    """How many messages were ever trimmed from the front (positions count from there)."""
    summary: str | None = None
    """The stored summary message (JSON, or sealed), if the thread has one."""
    boundary: int = 0
    """The position of the first message after the summary."""
    forked_from: str | None = None

    # The fields a listing reads (HMGET: fewer reply elements to parse than HGETALL).
    FIELDS = ("count", "created", "active", "ttl", "labels")

    @classmethod
    def decode(cls, raw: Mapping[Any, Any] | Sequence[Any], *, key: str) -> Self:
        """From HGETALL (a mapping) or HMGET of ``FIELDS`` (a list) of the hash ``key``.

        A damaged field raises ``CorruptThreadMetaError`` naming ``key`` and the field.
        """
        pairs = raw.items() if isinstance(raw, Mapping) else zip(cls.FIELDS, raw, strict=True)
        meta: dict[str, str] = {}
        for raw_name, value in pairs:
            if value is not None:
                name = raw_name.decode("utf-8", "replace") if isinstance(raw_name, bytes) else str(raw_name)
                meta[name] = _text(value, key, name)
        return cls(
            # A trim records 'first' even for a thread kept out of the registry.
            present="active" in meta,
            count=meta_int(meta.get("count"), key=key, field="count"),
            created_at=_time(meta.get("created"), key=key, field="created"),
            last_active=_time(meta.get("active"), key=key, field="active"),
            ttl=seconds_from_ms(meta_int(meta.get("ttl"), key=key, field="ttl")),
            labels=read_labels(meta.get("labels"), key=key),
            first=meta_int(meta.get("first"), key=key, field="first"),
            summary=meta.get("summary"),
            boundary=meta_int(meta.get("boundary"), key=key, field="boundary"),
            forked_from=meta.get("forked_from"),
        )


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
            "created_at": iso(self.created_at),
            "last_active": iso(self.last_active),
            "ttl": self.ttl,
            "labels": self.labels,
        }

    @classmethod
    def from_meta(cls, thread_id: str, meta: ThreadMeta) -> Self:
        """The summary the meta hash of ``thread_id`` describes."""
        return cls(thread_id, meta.count, meta.created_at, meta.last_active, meta.ttl, meta.labels)


@dataclass(frozen=True)
class ThreadInfo:
    """One thread in detail: ``RedisChatMessageStore.info()`` and ``RedisThreadRegistry.info()``.

    ``ttl`` is the configured sliding expiry, ``ttl_remaining`` what is left of it now;
    ``approximate_bytes`` is Redis' ``MEMORY USAGE`` of the thread's keys (None where that
    command is not allowed). A thread that does not exist has ``message_count`` 0 and ``keys`` 0.
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
    trimmed: int = 0
    """Messages trimmed from the front over the thread's life (positions count from the first ever)."""
    summary_boundary: int | None = None
    """With a summary: the position of the first message after it (it stands for every one before)."""
    forked_from: str | None = None
    """The thread this one was forked from, if it was."""
    key_count: int = 0
    """How many of the thread's keys (``ThreadKeys.owned``) exist."""

    @property
    def exists(self) -> bool:
        """True if any key of the thread exists (its messages, its meta hash, its session snapshot, ...)."""
        return self.key_count > 0 or self.message_count > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (timestamps as ISO 8601 UTC)."""
        return {
            "thread_id": self.thread_id,
            "key_prefix": self.key_prefix,
            "message_count": self.message_count,
            "created_at": iso(self.created_at),
            "last_active": iso(self.last_active),
            "ttl": self.ttl,
            "ttl_remaining": self.ttl_remaining,
            "labels": self.labels,
            "approximate_bytes": self.approximate_bytes,
            "trimmed": self.trimmed,
            "summary_boundary": self.summary_boundary,
            "forked_from": self.forked_from,
            "key_count": self.key_count,
        }

    @property
    def summarized(self) -> int:
        """How many of the stored messages the summary stands for (0 without one)."""
        if self.summary_boundary is None:
            return 0
        return min(max(self.summary_boundary - self.trimmed, 0), self.message_count)


async def read_thread_info(redis: RedisClient, key_prefix: str, keys: ThreadKeys) -> ThreadInfo:
    """One round trip (a pipeline on the thread's hash slot) that describes a thread.

    A damaged meta field raises ``CorruptThreadMetaError`` naming the key and the field.
    """
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys.meta)
    pipe.llen(keys.messages)
    pipe.pttl(keys.messages)
    pipe.exists(*keys.owned)
    for key in keys.owned:
        pipe.memory_usage(key)
    raw_meta, length, pttl, existing, *usage = await pipe.execute(raise_on_error=False)
    for reply in (raw_meta, length, pttl, existing):
        if isinstance(reply, Exception):
            raise reply
    meta = ThreadMeta.decode(raw_meta, key=keys.meta)
    sizes = [size for size in usage if not isinstance(size, Exception)]
    return ThreadInfo(
        thread_id=keys.thread_id,
        key_prefix=key_prefix,
        message_count=int(length),
        created_at=meta.created_at,
        last_active=meta.last_active,
        ttl=meta.ttl,
        ttl_remaining=pttl / 1000 if pttl > 0 else None,
        labels=meta.labels,
        approximate_bytes=sum(int(s or 0) for s in sizes) if len(sizes) == len(usage) else None,
        trimmed=meta.first,
        summary_boundary=meta.boundary if meta.summary is not None else None,
        forked_from=meta.forked_from,
        key_count=int(existing),
    )
