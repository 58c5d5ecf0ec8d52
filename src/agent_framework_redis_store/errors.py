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


class DecryptionError(CorruptMessageError):
    """A stored entry cannot be decrypted: unknown key id, tampered or moved ciphertext, or a
    plaintext entry where ciphertext was expected (and the reverse).

    ``key`` and ``index`` address the entry; the error never includes key material or
    message text, and nothing else in the thread is touched.
    """

    def __init__(self, key: str, index: int, reason: str) -> None:
        self.key = key
        self.index = index
        self.reason = reason
        Exception.__init__(self, f"Cannot decrypt the entry in Redis list {key!r} at index {index}: {reason}.")


class RedisPermissionError(RedisStoreError, PermissionError):
    """The Redis user (ACL) may not run a command the store needs on the thread's keys."""
