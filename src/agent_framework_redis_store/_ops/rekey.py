"""Rotating encryption keys over a whole key prefix, while the application runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .._core.cluster import RedisClient
from .._core.encryption import MessageEncryption
from .._core.errors import translate_redis_errors
from .._core.keyspace import DEFAULT_KEY_PREFIX, Keyspace
from .._core.options import ThreadOptions
from .._core.thread import ThreadStorage

__all__ = ["RekeyProgress", "rekey_prefix"]


@dataclass(frozen=True)
class RekeyProgress:
    """Where a prefix-wide ``rekey_prefix`` stands."""

    threads_seen: int
    threads_changed: int
    entries_rekeyed: int
    thread_id: str | None = None  # the thread just finished


async def rekey_prefix(
    redis: RedisClient,
    encryption: MessageEncryption,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    encrypt_plaintext: bool = False,
    on_progress: Callable[[RekeyProgress], None] | None = None,
    scan_count: int = 500,
) -> RekeyProgress:
    """Re-encrypt every thread under ``key_prefix`` (messages and session snapshot) with the current key.

    Walks the keys with SCAN. A maintenance operation: safe while the application runs
    (entries are swapped only if unchanged, see ``RedisChatMessageStore.rekey``) and safe to
    run again after an interruption. SCAN may visit a thread twice; the second visit finds
    nothing to do. ``on_progress`` is called after each thread.
    """
    keyspace = Keyspace(key_prefix)
    options = ThreadOptions(key_prefix=key_prefix, encryption=encryption, registry=False)
    seen = changed = rekeyed = 0
    thread_id: str | None = None
    async for raw_key in _scanned(redis, keyspace.thread_scan_pattern, scan_count):
        thread_id = keyspace.thread_id_of(raw_key)
        if thread_id is None:
            continue
        thread = ThreadStorage(redis, thread_id, options, where="the given redis client")
        count = await thread.rekey(encrypt_plaintext=encrypt_plaintext)
        seen += 1
        changed += 1 if count else 0
        rekeyed += count
        if on_progress is not None:
            on_progress(RekeyProgress(seen, changed, rekeyed, thread_id))
    return RekeyProgress(seen, changed, rekeyed, thread_id)


async def _scanned(redis: RedisClient, pattern: str, count: int) -> AsyncIterator[bytes | str]:
    """SCAN's keys; its errors as the package's (an ACL user without SCAN: ``RedisPermissionError``)."""
    keys = redis.scan_iter(match=pattern, count=count).__aiter__()
    while True:
        with translate_redis_errors("the given redis client", pattern, "keys"):
            try:
                key = await keys.__anext__()
            except StopAsyncIteration:
                return
        yield key
