"""``ThreadStorage``: one thread's storage, for any framework generation.

Appending (with trimming, TTL, idempotency and the registry, in one script), reading,
counting, clearing, describing and rekeying one thread. The framework adapters (the store
for ``AgentThread``, the 1.x history provider) translate their protocols into these calls
and hold no storage logic of their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .cluster import RedisClient, is_cluster
from .codec import decode_entry, encode_message
from .encryption import decrypt_entry, key_id_of
from .errors import RedisStoreError, translate_redis_errors
from .fingerprints import encode_with_fingerprint
from .lua import (
    AppendHeader,
    Registration,
    ScriptCall,
    append_and_trim,
    append_new_and_trim,
    replace_unchanged,
    replace_value_unchanged,
)
from .meta import ThreadInfo, read_thread_info
from .options import ThreadOptions

if TYPE_CHECKING:
    from .compat import FrameworkMessage

__all__ = ["ThreadStorage"]


class ThreadStorage:
    """The Redis protocol of one thread under one key prefix.

    ``where`` names the server in errors (credentials already redacted).
    """

    __slots__ = ("_cluster", "_registration", "keys", "options", "redis", "where")

    def __init__(self, redis: RedisClient, thread_id: str, options: ThreadOptions, *, where: str) -> None:
        self.redis = redis
        self.options = options
        self.keys = options.keyspace.thread(thread_id)
        self.where = where
        self._cluster = is_cluster(redis)
        # On a Cluster the prefix-wide registry is in another slot: updated beside the script.
        self._registration = (
            Registration(options.labels_json, None if self._cluster else options.keyspace.registry)
            if options.registry
            else None
        )

    @property
    def thread_id(self) -> str:
        """The thread's id."""
        return self.keys.thread_id

    # -- writing ---------------------------------------------------------------------------

    async def append(self, messages: Sequence[FrameworkMessage], *, token: str, seed: Sequence[str] = ()) -> int:
        """Append ``messages`` (after the ``seed`` payloads, written only to an empty thread) in one round trip.

        Trims to ``max_messages`` and refreshes the TTL in the same script. Returns the
        thread's length, or -1 when a batch with ``token`` was already applied.
        """
        payloads = [encode_message(message) for message in messages]
        return await self.append_encoded([*seed, *payloads], token=token, seed_count=len(seed))

    async def append_encoded(self, payloads: Sequence[str], *, token: str, seed_count: int = 0) -> int:
        """``append`` for payloads already encoded (``codec.encode_message``)."""
        header = self._header(token)
        call = append_and_trim(header, seed_count=seed_count, payloads=self._sealed(payloads))
        return int(await self._run(call, header.now_us))

    async def append_new(self, messages: Sequence[FrameworkMessage], *, token: str) -> int:
        """Append the messages that do not repeat the thread's newest ones; returns how many were stored."""
        encryption = self.options.encryption
        # With encryption the fingerprints are keyed: they must reveal nothing about the bodies.
        digest_key = encryption.digest_key if encryption is not None else b""
        payloads, fingerprints = zip(*(encode_with_fingerprint(m, key=digest_key) for m in messages), strict=True)
        header = self._header(token)
        call = append_new_and_trim(header, fingerprints=fingerprints, payloads=self._sealed(payloads))
        return int(await self._run(call, header.now_us))

    async def clear(self) -> None:
        """Delete every key of the thread and its registry entry."""
        with self.errors():
            await self.options.keyspace.delete(self.redis, [self.thread_id])

    # -- reading ---------------------------------------------------------------------------

    async def read(self, *, last: int | None = None) -> list[FrameworkMessage]:
        """The thread's messages, oldest first; with ``last=N`` only the newest N."""
        key = self.keys.messages
        with self.errors():
            raw = await self.redis.lrange(key, 0 if last is None else -last, -1)  # type: ignore[misc]
        offset = 0 if last is None else -len(raw)  # negative indexes address entries from the end
        encryption = self.options.encryption
        return [
            decode_entry(entry, encryption=encryption, key=key, index=position + offset)[1]
            for position, entry in enumerate(raw)
        ]

    async def count(self) -> int:
        """How many messages the thread holds."""
        with self.errors():
            return int(await self.redis.llen(self.keys.messages))  # type: ignore[misc]

    async def info(self) -> ThreadInfo:
        """Count, times, TTL, labels and approximate bytes, in one round trip."""
        with self.errors():
            return await read_thread_info(self.redis, self.options.key_prefix, self.keys)

    # -- encryption ------------------------------------------------------------------------

    async def rekey(self, *, encrypt_plaintext: bool = False, max_rounds: int = 5) -> int:
        """Re-encrypt every entry (and the session snapshot) not under the current key; returns how many.

        Each round reads the list, re-encrypts client-side and swaps, in one script, each
        entry still in the list exactly as read, wherever a concurrent trim has moved it:
        appends and trims by other writers are never lost or undone. An entry changed
        meanwhile is retried in the next round. Nothing is written when an entry fails to
        decrypt. ``encrypt_plaintext`` also encrypts entries written before encryption was on.
        """
        encryption = self.options.encryption
        if encryption is None:
            raise ValueError("rekey needs a store created with encryption=")
        key = self.keys.messages
        total = 0
        with self.errors():
            total += await self._rekey_session(encrypt_plaintext)
            for _ in range(max_rounds):
                entries = await self.redis.lrange(key, 0, -1)  # type: ignore[misc]
                pairs: list[tuple[bytes | str, str]] = []
                for index, entry in enumerate(entries):
                    if key_id_of(entry) == encryption.key_id:
                        continue
                    plaintext = decrypt_entry(
                        encryption, entry, key=key, index=index, allow_plaintext=encrypt_plaintext
                    )
                    text = plaintext.decode("utf-8") if isinstance(plaintext, bytes) else plaintext
                    pairs.append((entry, encryption.encrypt(text, context=key)))
                if not pairs:
                    return total
                replaced = int(await replace_unchanged(key, pairs).run(self.redis))
                total += replaced
                if replaced == len(pairs):
                    return total
        raise RedisStoreError(
            f"rekey of Redis list {key!r} did not settle in {max_rounds} rounds: writers with an older key keep "
            "adding entries, or the list is trimmed faster than it can be rewritten; run it again"
        )

    async def _rekey_session(self, encrypt_plaintext: bool) -> int:
        encryption = self.options.encryption
        assert encryption is not None
        key = self.keys.session
        # EXISTS first: an ACL user of a store that keeps no sessions may not have GET.
        if not await self.redis.exists(key):
            return 0
        snapshot = await self.redis.get(key)
        if snapshot is None or key_id_of(snapshot) == encryption.key_id:
            return 0
        opened = decrypt_entry(encryption, snapshot, key=key, index=0, allow_plaintext=encrypt_plaintext)
        text = opened.decode("utf-8") if isinstance(opened, bytes) else opened
        call = replace_value_unchanged(key, snapshot, encryption.encrypt(text, context=key))
        return int(await call.run(self.redis))

    # -- internals -------------------------------------------------------------------------

    def errors(self) -> AbstractContextManager[None]:
        """Translate redis-py errors, naming the server and the thread's list."""
        return translate_redis_errors(self.where, self.keys.messages, "a message list")

    def _header(self, token: str) -> AppendHeader:
        options = self.options
        return AppendHeader(
            self.keys,
            max_messages=options.max_messages,
            ttl_ms=options.ttl_ms,
            token=token,
            # The writer's clock only orders tokens and stamps activity: clocks need not agree.
            now_us=time.time_ns() // 1000,
            registration=self._registration,
        )

    def _sealed(self, payloads: Sequence[str]) -> Sequence[str]:
        encryption = self.options.encryption
        if encryption is None:
            return payloads
        # Bound to this thread's key, so an entry copied to another thread does not decrypt.
        return [encryption.encrypt(payload, context=self.keys.messages) for payload in payloads]

    async def _run(self, call: ScriptCall, now_us: int) -> Any:
        """Run one of the thread's write scripts: the hot path of every turn, so kept lean."""
        try:
            if self._registration is not None and self._cluster:
                return await self._run_beside_index(call, now_us // 1000)
            return await call.run(self.redis)
        except Exception:
            # Translating only on failure keeps the context manager off the success path.
            with self.errors():
                raise

    async def _run_beside_index(self, call: ScriptCall, now_ms: int) -> Any:
        """Redis Cluster: the registry ``ZADD`` goes to its own node at the same time as the script.

        No script of the thread may touch the prefix-wide registry (another slot). If the
        ``ZADD`` fails the call fails, and its retry (same idempotency token) adds it.
        """
        index_update = asyncio.ensure_future(
            self.redis.zadd(self.options.keyspace.registry, {self.thread_id: now_ms})  # type: ignore[arg-type]
        )
        try:
            applied = await call.run(self.redis)
        except BaseException:
            index_update.cancel()
            raise
        await index_update
        return applied
