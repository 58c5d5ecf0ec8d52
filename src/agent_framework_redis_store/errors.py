"""Errors raised by the store. Every message names what to look at next."""

from __future__ import annotations


class RedisStoreError(Exception):
    """Base class of every error this package raises on purpose."""


class StoreStateError(RedisStoreError, ValueError):
    """A serialized store state is not one this package wrote (wrong shape or tampered)."""


class CorruptMessageError(RedisStoreError):
    """A stored entry cannot be decoded into a framework message.

    ``key`` and ``index`` address the entry (``LINDEX key index`` shows it); nothing
    else in the thread is touched.
    """

    def __init__(self, key: str, index: int, reason: str) -> None:
        self.key = key
        self.index = index
        self.reason = reason
        super().__init__(
            f"Corrupt entry in Redis list {key!r} at index {index}: {reason}. "
            f"Inspect it with LINDEX; remove it with LSET + LREM or clear the thread."
        )


class RedisUnavailableError(RedisStoreError, ConnectionError):
    """Redis could not be reached after the configured retry policy was exhausted."""


class ThreadNotFoundError(RedisStoreError, LookupError):
    """No thread with this id exists under the key prefix (never written, deleted or expired)."""

    def __init__(self, thread_id: str, key_prefix: str) -> None:
        self.thread_id = thread_id
        self.key_prefix = key_prefix
        super().__init__(f"No thread {thread_id!r} under key prefix {key_prefix!r}")


class ThreadRecordError(RedisStoreError, ValueError):
    """An exported thread record (one JSONL line) is malformed; the message says which field."""
