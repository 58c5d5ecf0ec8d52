"""The Redis key layout, in one place.

A thread lives under ``{key_prefix}:{<encoded thread id>}``:

* ``{key_prefix}:{<id>}`` is a list, one JSON message per entry, oldest first;
* ``{key_prefix}:{<id>}:batches`` is a sorted set of recent batch tokens, so a retried
  append is recognised and not stored twice;
* ``{key_prefix}:{<id>}:fingerprints`` is a list of the fingerprints of the newest
  messages written by the 1.x history provider, so a replayed message is not stored twice;
* ``{key_prefix}:{<id>}:session`` is the JSON snapshot of a whole 1.x ``AgentSession``
  (``RedisSessionStore``);
* ``{key_prefix}:{<id>}:meta`` is a hash of registry metadata (created, active, count,
  ttl, labels), expiring with the thread.

One key per prefix is not a thread's: ``{key_prefix}:registry``, a sorted set of thread
ids scored by last activity (milliseconds), the index the registry pages through. It
holds no brace and no thread key ends like it, so it never collides with a thread.

The encoded id is wrapped in braces, a Redis Cluster hash tag: every key of one thread
lands in one slot, so each per-thread operation is a single-slot script. The id is
percent-encoded (RFC 3986 unreserved characters stay as they are), which is injective
and removes ``:``, ``{``, ``}`` and whitespace: no thread id can address another
thread's keys. A key prefix may not contain braces, so it never captures the hash tag.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

__all__ = [
    "batches_key",
    "fingerprints_key",
    "meta_key",
    "registry_key",
    "session_key",
    "thread_id_from_key",
    "thread_key",
    "validate_key_prefix",
    "validate_thread_id",
]

_BATCHES_SUFFIX = ":batches"
_META_SUFFIX = ":meta"
_REGISTRY_SUFFIX = ":registry"
_FINGERPRINTS_SUFFIX = ":fingerprints"
_SESSION_SUFFIX = ":session"


def validate_thread_id(thread_id: object, *, name: str = "thread_id") -> str:
    """Return ``thread_id`` if it is a usable thread id, else raise naming ``name``."""
    if not isinstance(thread_id, str):
        raise TypeError(f"{name} must be a str, got {type(thread_id).__name__}")
    if not thread_id:
        raise ValueError(f"{name} must be a non-empty str")
    try:
        thread_id.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{name} must be valid Unicode text (it contains a lone surrogate)") from err
    return thread_id


def validate_key_prefix(key_prefix: object, *, name: str = "key_prefix") -> str:
    """Return ``key_prefix`` if it is usable, else raise naming ``name``."""
    if not isinstance(key_prefix, str):
        raise TypeError(f"{name} must be a str, got {type(key_prefix).__name__}")
    if not key_prefix:
        raise ValueError(f"{name} must be a non-empty str")
    if "{" in key_prefix or "}" in key_prefix:
        # A brace in the prefix would become the Redis Cluster hash tag instead of the thread id.
        raise ValueError(f"{name} must not contain '{{' or '}}', got {key_prefix!r}")
    return key_prefix


def thread_key(key_prefix: str, thread_id: str) -> str:
    """The list key that holds the thread's messages."""
    return f"{key_prefix}:{{{quote(thread_id, safe='')}}}"


def batches_key(key_prefix: str, thread_id: str) -> str:
    """The sorted-set key that remembers the thread's recent batch tokens."""
    return thread_key(key_prefix, thread_id) + _BATCHES_SUFFIX


def meta_key(key_prefix: str, thread_id: str) -> str:
    """The hash that holds the thread's registry metadata (same hash slot as its messages)."""
    return thread_key(key_prefix, thread_id) + _META_SUFFIX


def registry_key(key_prefix: str) -> str:
    """The prefix-wide sorted set of thread ids by last activity (its own hash slot)."""
    return key_prefix + _REGISTRY_SUFFIX


def fingerprints_key(key_prefix: str, thread_id: str) -> str:
    """The list key with the fingerprints of the thread's newest messages (see ``lua.APPEND_NEW_AND_TRIM``)."""
    return thread_key(key_prefix, thread_id) + _FINGERPRINTS_SUFFIX


def session_key(key_prefix: str, session_id: str) -> str:
    """The string key with the JSON snapshot of a whole session (same hash slot as its messages)."""
    return thread_key(key_prefix, session_id) + _SESSION_SUFFIX


def thread_id_from_key(key_prefix: str, key: str | bytes) -> str | None:
    """The thread id of a message-list key under ``key_prefix``, or None for any other key."""
    if isinstance(key, bytes):
        key = key.decode("utf-8", errors="replace")
    head = f"{key_prefix}:{{"
    if not key.startswith(head) or not key.endswith("}"):
        return None
    encoded = key[len(head) : -1]
    if "{" in encoded or "}" in encoded:
        return None
    return unquote(encoded, errors="strict")
