"""A whole thread as one portable record, and its atomic read and write.

``ThreadRecord`` is one line of a ``threads export`` file (JSON Lines). ``read_record`` takes a
consistent snapshot of a thread; ``write_record`` writes one in one atomic step (``IMPORT_THREAD``),
which ``threads import``, ``migrate`` and ``fork`` all use.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Self

from .cluster import RedisClient, is_cluster
from .codec import decode_entry, encode_message_dict, message_from_dict
from .compression import Compression, compress
from .encryption import MessageEncryption, decrypt_entry
from .errors import (
    CorruptSessionError,
    DecryptionError,
    ThreadNotFoundError,
    ThreadRecordError,
    translate_redis_errors,
)
from .groups import CharacterEstimator, Tokenizer, index_entry, shape
from .keyspace import Keyspace, ThreadKeys, validate_thread_id
from .lua import import_thread
from .meta import ThreadMeta, decode_labels, iso, to_ms
from .options import labels_json, validate_labels

__all__ = [
    "RECORD_VERSION",
    "ThreadRecord",
    "fork_thread",
    "open_session_snapshot",
    "read_record",
    "session_snapshot_problem",
    "write_record",
]

RECORD_VERSION = 1


def _json_problem(err: json.JSONDecodeError) -> str:
    """What is wrong with a record's JSON, by column (json's line and column count within the one record)."""
    if err.pos < len(err.doc.rstrip("\r\n")):
        return f"not JSON at column {err.colno}: {err.msg}"
    # Past the end of the line: the record stops before its JSON does.
    return f"not JSON: the line ends before its JSON does ({err.msg}); a record is one line"


@dataclass(frozen=True)
class ThreadRecord:
    """One exported thread: one line of an export file (JSON Lines).

    Messages are the stored JSON objects, unchanged; importing a record reproduces the
    thread's messages and their order, its labels, timestamps and TTL, and its summary
    (``summary``: the summary message, standing for the first ``summary_covers`` messages), and
    its 1.x session snapshot (``session``: ``AgentSession.to_dict()``, as ``RedisSessionStore``
    keeps it beside the messages; a thread may hold a snapshot and no messages).
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
    session: dict[str, Any] | None = None
    session_ttl_remaining: float | None = None

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
        if self.session is not None:
            record["session"] = {"snapshot": self.session, "ttl_remaining": self.session_ttl_remaining}
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str | bytes) -> Self:
        """Parse and check one line; raises ``ThreadRecordError`` naming the bad field."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise ThreadRecordError(_json_problem(err)) from err
        except ValueError as err:  # bytes that are not UTF-8
            raise ThreadRecordError(f"not JSON ({err})") from err
        if not isinstance(data, dict):
            raise ThreadRecordError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("thread_id") is None:
            raise ThreadRecordError("no thread_id")
        if data.get("version", RECORD_VERSION) != RECORD_VERSION:
            raise ThreadRecordError(f"'version' is {data.get('version')!r}; this version reads {RECORD_VERSION}")
        try:
            thread_id = validate_thread_id(data.get("thread_id"))
            labels = validate_labels(data.get("labels") or {}) or {}
        except (TypeError, ValueError) as err:
            raise ThreadRecordError(str(err)) from err
        session, session_ttl = _parse_session(data.get("session"))
        messages = data.get("messages")
        if not isinstance(messages, list) or not (messages or session is not None):
            raise ThreadRecordError(
                "'messages' must be a list of message objects, empty only when the record has a 'session'"
            )
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
            session=session,
            session_ttl_remaining=session_ttl,
        )


def _parse_session(value: object) -> tuple[dict[str, Any] | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or not isinstance(value.get("snapshot"), dict):
        raise ThreadRecordError("'session' must be an object with a 'snapshot' object and 'ttl_remaining'")
    snapshot = value["snapshot"]
    if (problem := session_snapshot_problem(snapshot)) is not None:
        raise ThreadRecordError(f"'session.snapshot' is not an AgentSession.to_dict() object: {problem}")
    return snapshot, _parse_seconds(value.get("ttl_remaining"), "session.ttl_remaining")


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


async def read_record(
    redis: RedisClient, keys: ThreadKeys, *, encryption: MessageEncryption | None, upto: int | None = None
) -> ThreadRecord | None:
    """A consistent snapshot of the thread (its first ``upto`` messages and its session snapshot),
    or None when it holds neither.

    Every entry is decoded, so a record that a write would refuse is found out now; a damaged
    meta field raises ``CorruptThreadMetaError`` naming it, a session snapshot that is not JSON
    ``CorruptSessionError``.
    """
    if is_cluster(redis):
        # redis-py queues a cluster transaction's commands on a throwaway event loop: the
        # client must know the topology already, or it opens its connections there.
        await redis.initialize()
    pipe = redis.pipeline(transaction=True)
    pipe.lrange(keys.messages, 0, -1 if upto is None else upto - 1)
    pipe.hgetall(keys.meta)
    pipe.pttl(keys.messages)
    pipe.get(keys.session)
    pipe.pttl(keys.session)
    payloads, raw_meta, pttl, raw_session, session_pttl = await pipe.execute()
    session = (
        None
        if raw_session is None
        else open_session_snapshot(raw_session, session_id=keys.thread_id, key=keys.session, encryption=encryption)
    )
    if not payloads:
        if session is None:
            return None
        return ThreadRecord(
            thread_id=keys.thread_id,
            messages=[],
            labels={},
            created_at=None,
            last_active=None,
            ttl=None,
            ttl_remaining=None,
            session=session,
            session_ttl_remaining=session_pttl / 1000 if session_pttl > 0 else None,
        )
    meta = ThreadMeta.decode(raw_meta, key=keys.meta)
    summary = None
    # Positions count from the thread's first message ever; the record's from its first kept.
    covers = min(max(meta.boundary - meta.first, 0), len(payloads))
    if meta.summary is not None and (upto is None or covers < len(payloads)):
        summary = decode_entry(meta.summary, encryption=encryption, key=keys.summary, index=0)[0]
    return ThreadRecord(
        thread_id=keys.thread_id,
        messages=[
            decode_entry(payload, encryption=encryption, key=keys.messages, index=index)[0]
            for index, payload in enumerate(payloads)
        ],
        labels=meta.labels,
        created_at=meta.created_at,
        last_active=meta.last_active,
        ttl=meta.ttl,
        ttl_remaining=pttl / 1000 if pttl > 0 else None,
        summary=summary,
        summary_covers=covers if summary else 0,
        session=session,
        session_ttl_remaining=session_pttl / 1000 if session is not None and session_pttl > 0 else None,
    )


def session_snapshot_problem(data: object) -> str | None:
    """What keeps ``data`` from being an ``AgentSession.to_dict()`` object; None if nothing does."""
    if not isinstance(data, dict):
        return f"expected a session object, got {type(data).__name__}"
    if data.get("type", "session") != "session":
        return f"expected a session object, got type {data.get('type')!r}"
    if not isinstance(data.get("session_id"), str) or not isinstance(data.get("state", {}), dict):
        return "'session_id' must be a str and 'state' an object"
    return None


def open_session_snapshot(
    raw: bytes | str, *, session_id: str, key: str, encryption: MessageEncryption | None
) -> dict[str, Any]:
    """A stored session snapshot (``RedisSessionStore``'s) as the ``AgentSession.to_dict()`` object it was:
    decrypted and checked; ``CorruptSessionError`` naming ``session_id`` and ``key`` if it is not one."""
    try:
        data = json.loads(decrypt_entry(encryption, raw, key=key, index=0))
    except DecryptionError as err:
        raise CorruptSessionError(session_id, key, err.reason) from err
    except ValueError as err:
        raise CorruptSessionError(session_id, key, f"{type(err).__name__}: {err}") from err
    if (problem := session_snapshot_problem(data)) is not None:
        raise CorruptSessionError(session_id, key, f"TypeError: {problem}")
    return data


async def write_record(
    redis: RedisClient,
    keyspace: Keyspace,
    record: ThreadRecord,
    *,
    encryption: MessageEncryption | None,
    replace: bool = False,
    now_ms: int = 0,
    forked_from: str | None = None,
    compression: Compression | None = None,
    tokenizer: Tokenizer | None = None,
) -> bool:
    """Write ``record`` in one atomic step; False if any key of its thread exists and not ``replace``.

    A thread is every key it owns: an id holding only a session snapshot (or only a meta
    hash, a lease, ...) exists, and is left untouched unless ``replace``.

    Missing timestamps become ``now_ms``. Entries are compressed (with ``compression``) and
    sealed for the record's own thread; ``tokenizer`` (default: the character estimate)
    counts their tokens for context windows.
    """
    created = to_ms(record.created_at) if record.created_at else now_ms
    active = to_ms(record.last_active) if record.last_active else now_ms
    ttl_ms = int(record.ttl * 1000) if record.ttl else 0
    keys = keyspace.thread(record.thread_id)
    payloads = [encode_message_dict(m) for m in record.messages]
    tokenizer = tokenizer or CharacterEstimator()
    index = [
        index_entry(shape(m, p, tokenizer, previous=record.messages[i - 1] if i else None))
        for i, (m, p) in enumerate(zip(record.messages, payloads, strict=True))
    ]
    summary = None if record.summary is None else encode_message_dict(record.summary)
    session = None
    if record.session is not None:
        session = json.dumps(record.session, separators=(",", ":"), ensure_ascii=False)
        if encryption is not None:
            session = encryption.encrypt(session, context=keys.session)
    if compression is not None:
        payloads = [compress(p) for p in payloads]
    if encryption is not None:
        payloads = [encryption.encrypt(p, context=keys.messages) for p in payloads]
        if summary is not None:
            summary = encryption.encrypt(summary, context=keys.summary)
    clustered = is_cluster(redis)
    call = import_thread(
        keys,
        # On a Cluster the registry is in another slot: the thread first, then its entry.
        registry_key=None if clustered else keyspace.registry,
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
        forked_from=forked_from,
        session=session,
        session_expire_ms=int(record.session_ttl_remaining * 1000) if record.session_ttl_remaining else 0,
    )
    replaced_labels = await redis.hget(keys.meta, "labels") if clustered and replace and not payloads else None
    written = bool(await call.run(redis))
    if written and clustered and not payloads:
        # A session snapshot alone has no registry entry (see IMPORT_THREAD): the replaced thread's goes.
        pipe = redis.pipeline(transaction=False)
        pipe.zrem(keyspace.registry, record.thread_id)
        for key in keyspace.label_indexes(decode_labels(replaced_labels)):
            pipe.zrem(key, record.thread_id)
        await pipe.execute()
    elif written and clustered:
        # The registry and the label indexes are in other slots: the thread first, then its entries.
        pipe = redis.pipeline(transaction=False)
        for key in [keyspace.registry, *keyspace.label_indexes(record.labels)]:
            pipe.zadd(key, {record.thread_id: active})
        await pipe.execute()
    return written


async def fork_thread(
    redis: RedisClient,
    keyspace: Keyspace,
    thread_id: str,
    new_thread_id: str | None,
    *,
    upto: int | None,
    encryption: MessageEncryption | None,
    where: str,
    compression: Compression | None = None,
    tokenizer: Tokenizer | None = None,
) -> str:
    """Copy a thread into a new one (see ``RedisChatMessageStore.fork``); returns the new id.

    One read of the source and one atomic write of the copy: entries are re-sealed for the
    new thread, and the copy records ``forked_from`` in its meta hash.
    """
    if upto is not None and (isinstance(upto, bool) or not isinstance(upto, int) or upto < 1):
        raise ValueError(f"upto must be a positive int or None, got {upto!r}")
    new_thread_id = (
        f"thread_{uuid.uuid4()}" if new_thread_id is None else validate_thread_id(new_thread_id, name="new_thread_id")
    )
    source = keyspace.thread(thread_id)
    with translate_redis_errors(where, source.messages, "a message list"):
        record = await read_record(redis, source, encryption=encryption, upto=upto)
        if record is None or not record.messages:
            raise ThreadNotFoundError(thread_id, keyspace.prefix)
        seconds, micros = await redis.time()  # type: ignore[misc]
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        # The messages only: a session snapshot names its own session (its session_id).
        copy = replace(
            record,
            thread_id=new_thread_id,
            created_at=None,
            last_active=None,
            ttl_remaining=None,
            session=None,
            session_ttl_remaining=None,
        )
        written = await write_record(
            redis,
            keyspace,
            copy,
            encryption=encryption,
            now_ms=now_ms,
            forked_from=thread_id,
            compression=compression,
            tokenizer=tokenizer,
        )
        if not written:
            raise ValueError(f"new_thread_id {new_thread_id!r} already exists under key prefix {keyspace.prefix!r}")
    return new_thread_id
