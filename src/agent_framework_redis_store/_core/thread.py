"""``ThreadStorage``: one thread's storage, for any framework generation.

Appending (with group-safe trimming, TTL, idempotency and the registry, in one script),
reading what the model gets (window and summary, in one script), reading the transcript,
compacting, counting, clearing, describing and rekeying one thread. The framework adapters
(the store for ``AgentThread``, the 1.x history provider) translate their protocols into
these calls and hold no storage logic of their own.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .cluster import RedisClient, is_cluster
from .codec import OpenedEntry, decode_entry, encode_message_dict, message_from_dict, open_entry
from .compaction import SUMMARY_PREFIX, CompactionResult, SummaryCompaction, is_summary
from .compression import compress
from .connection import eviction_policy_unread, warn_if_evicting
from .encryption import decrypt_entry, key_id_of
from .errors import CorruptMessageError, RedisStoreError, is_wrong_type, kept_cancellation, translate_redis_errors
from .fingerprints import batch_member, fingerprint
from .groups import index_entry, may_link, open_group, repair, shape
from .lua import (
    AppendHeader,
    Registration,
    ScriptCall,
    append_and_trim,
    append_new_and_trim,
    commit_summary,
    read_context,
    release_lease,
    remove_entry,
    replace_unchanged,
    replace_value_unchanged,
    set_entry,
)
from .meta import ThreadInfo, decode_labels, meta_int, read_thread_info
from .options import ThreadOptions
from .removal import delete_threads
from .telemetry import (
    BATCH_ALREADY_APPLIED,
    BATCH_MESSAGES,
    DEDUPE,
    MAX_MESSAGES,
    MESSAGES_RETURNED,
    MESSAGES_SKIPPED,
    MESSAGES_UNSUMMARIZED,
    MESSAGES_WRITTEN,
    SEED_MESSAGES,
    SUMMARY,
    THREAD_MESSAGES,
    WINDOW_MAX_MESSAGES,
    WINDOW_MAX_TOKENS,
    Operation,
    count_round_trips,
    current_operation,
    traced,
)

if TYPE_CHECKING:
    from .compat import FrameworkMessage

__all__ = ["EncodedBatch", "ThreadStorage"]


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """Messages as the scripts take them: stored JSON, index entries, token counts, fingerprints."""

    payloads: list[str]
    index: list[str]
    tokens: list[int]
    fingerprints: list[bytes]
    alternates: list[list[bytes]] = field(default_factory=list)
    """The fingerprints again under each retired key's digest key (see ``retired_digest_keys``)."""

    def __len__(self) -> int:
        return len(self.payloads)

    def __add__(self, other: EncodedBatch) -> EncodedBatch:
        return EncodedBatch(
            self.payloads + other.payloads,
            self.index + other.index,
            self.tokens + other.tokens,
            self.fingerprints + other.fingerprints,
            [a + b for a, b in zip(self.alternates, other.alternates, strict=False)],
        )


@dataclass(frozen=True, slots=True)
class _Window:
    """What READ_CONTEXT returned, decoded."""

    start: int  # absolute position of the first message
    summary: dict[str, Any] | None
    boundary: int
    unsummarized: int
    unsummarized_tokens: int | None
    entries: list[OpenedEntry]


class ThreadStorage:
    """The Redis protocol of one thread under one key prefix.

    ``where`` names the server in errors (credentials already redacted). ``tasks`` is the
    owner's set of background compactions, which its ``aclose`` waits for.
    """

    __slots__ = (
        "_cluster",
        "_labels_indexed",
        "_registration",
        "_tasks",
        "_unsummarized",
        "keys",
        "options",
        "redis",
        "where",
    )

    def __init__(
        self,
        redis: RedisClient,
        thread_id: str,
        options: ThreadOptions,
        *,
        where: str,
        tasks: set[asyncio.Task[None]] | None = None,
    ) -> None:
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
        self._tasks: set[asyncio.Task[None]] = tasks if tasks is not None else set()
        # Messages (and tokens, if known) after the summary, as last read plus what was appended
        # since: tells a compaction when it is due without a round trip.
        self._unsummarized: tuple[int, int | None] | None = None
        # Redis Cluster: the labels this thread is indexed under, as last written (None: not read yet).
        self._labels_indexed: dict[str, str] | None = None

    @property
    def thread_id(self) -> str:
        """The thread's id."""
        return self.keys.thread_id

    # -- writing ---------------------------------------------------------------------------

    def encode(self, messages: Sequence[FrameworkMessage], *, fingerprints: bool = False) -> EncodedBatch:
        """Encode ``messages`` for an append script (fingerprints only when asked)."""
        encryption = self.options.encryption
        # With encryption the fingerprints are keyed: they must reveal nothing about the bodies.
        digest_key = encryption.digest_key if encryption is not None else b""
        # A key rotation changes the digest key: fingerprints stored under a retired key are
        # recognised through these, and rewritten under the current one.
        retired: Sequence[bytes] = getattr(encryption, "retired_digest_keys", ()) if fingerprints else ()
        tokenizer = self.options.tokenizer
        compressed = self.options.compression is not None
        batch = EncodedBatch([], [], [], [], [[] for _ in retired])
        previous: dict[str, Any] | None = None
        for message in messages:
            data = message.to_dict(exclude_none=True)
            if is_summary(data):
                continue  # a summary handed back by a client is not history
            payload = encode_message_dict(data)
            message_shape = shape(data, payload, tokenizer, previous=previous)  # tokens of the JSON
            batch.payloads.append(compress(payload) if compressed else payload)
            batch.index.append(index_entry(message_shape))
            batch.tokens.append(message_shape.tokens)
            if fingerprints:
                batch.fingerprints.append(fingerprint(data, key=digest_key))
                for alternate, key in zip(batch.alternates, retired, strict=True):
                    alternate.append(fingerprint(data, key=key))
            previous = data
        return batch

    async def append(self, batch: EncodedBatch, *, token: str, seed: EncodedBatch | None = None) -> int:
        """Append ``batch`` (after ``seed``, written only to an empty thread) in one round trip.

        Trims to ``max_messages`` where a group starts and refreshes the TTL in the same
        script. Returns the thread's length, or -1 when a batch with ``token`` was already applied.
        """
        whole = batch if seed is None else seed + batch
        header = self._header(token)
        payloads = self._sealed(whole.payloads)
        seed_count = 0 if seed is None else len(seed)
        call = append_and_trim(header, seed_count=seed_count, payloads=payloads, index=whole.index)
        if (op := self._operation()) is not None:
            self._describe_save(op, len(batch), payloads, dedupe=False)
            if seed_count:
                op.set(SEED_MESSAGES, seed_count)
        length = int(await self._run(call, header.now_us))
        if length >= 0:
            self._appended(len(batch), batch.tokens)
        if op is not None:
            op.set(BATCH_ALREADY_APPLIED, length < 0)
            op.set(MESSAGES_WRITTEN, len(whole) if length >= 0 else 0)
            op.set(MESSAGES_SKIPPED, 0 if length >= 0 else len(batch))
            if length >= 0:
                op.set(THREAD_MESSAGES, length)
        return length

    async def append_new(self, batch: EncodedBatch, *, token: str) -> int:
        """Append the messages that do not repeat the thread's newest ones; returns how many were stored."""
        if not batch:
            return 0
        header = self._header(token)
        payloads = self._sealed(batch.payloads)
        call = append_new_and_trim(
            header, fingerprints=batch.fingerprints, payloads=payloads, index=batch.index, alternates=batch.alternates
        )
        if (op := self._operation()) is not None:
            self._describe_save(op, len(batch), payloads, dedupe=True)
        appended = int(await self._run(call, header.now_us))
        self._appended(appended, batch.tokens[len(batch) - appended :])
        if op is not None:
            op.set(MESSAGES_WRITTEN, appended)
            op.set(MESSAGES_SKIPPED, len(batch) - appended)
        return appended

    async def clear(self) -> None:
        """Delete every key of the thread and its registry entry."""
        self._unsummarized = None
        self._labels_indexed = None
        with self.errors():
            await delete_threads(self.redis, self.options.keyspace, [self.thread_id], count_messages=False)

    # -- reading ---------------------------------------------------------------------------

    async def context(self, *, last: int | None = None) -> list[FrameworkMessage]:
        """What the model gets: the summary, then the newest messages after it that fit.

        At most ``context_messages`` (or ``last``) messages and ``context_tokens`` tokens
        (the summary's included), cut where a tool-call group starts, and repaired so that
        no result is without its call and no call is left unanswered behind the conversation.
        With ``compaction=`` and neither window, at most the compaction's ceiling
        (``max_unsummarized_messages``, ``max_unsummarized_tokens``) after the summary.
        """
        options = self.options
        limits = [n for n in (options.context_messages, last) if n is not None]
        compaction = options.compaction
        max_tokens = options.context_tokens
        ceiling_tokens = None
        if compaction is not None and not options.windowed:
            # A summary may land late (a slow or failing summarizer): the request must not grow meanwhile.
            if compaction.max_unsummarized_messages is not None:
                limits.append(compaction.max_unsummarized_messages)
            max_tokens = ceiling_tokens = compaction.max_unsummarized_tokens
        window = await self._read_window(
            max_count=min(limits) if limits else None,
            max_tokens=max_tokens,
            unsummarized_tokens=compaction is not None and compaction.trigger_tokens is not None,
        )
        self._unsummarized = (window.unsummarized, window.unsummarized_tokens)
        entries = window.entries
        if options.context_tokens is not None:
            entries = self._fit(entries, options.context_tokens - self._tokens(window.summary))
        elif ceiling_tokens is not None:
            entries = self._fit(entries, ceiling_tokens)
        if any(may_link(entry.text) for entry in entries):
            decoded = [entry.decode() for entry in entries]
            kept = repair([data for data, _ in decoded])
            messages = [decoded[k][1] if isinstance(k, int) else message_from_dict(k) for k in kept]
        else:  # nothing to repair: no message dict is kept alive
            messages = [entry.decode()[1] for entry in entries]
        if window.summary is not None:
            messages.insert(0, message_from_dict(window.summary))
        if (op := self._operation()) is not None:
            if limits:
                op.set(WINDOW_MAX_MESSAGES, min(limits))
            if max_tokens is not None:
                op.set(WINDOW_MAX_TOKENS, max_tokens)
            op.set(MESSAGES_RETURNED, len(messages))
        return messages

    async def transcript(self, *, last: int | None = None) -> list[FrameworkMessage]:
        """Every stored message, oldest first (``last=N``: the newest N), summarized or not, unrepaired."""
        key = self.keys.messages
        count_round_trips()
        with self.errors():
            raw = await self.redis.lrange(key, 0 if last is None else -last, -1)  # type: ignore[misc]
        offset = 0 if last is None else -len(raw)  # negative indexes address entries from the end
        encryption = self.options.encryption
        if (op := self._operation()) is not None:
            op.received(raw)
            op.set(MESSAGES_RETURNED, len(raw))
            if last is not None:
                op.set(WINDOW_MAX_MESSAGES, last)
        return [
            decode_entry(entry, encryption=encryption, key=key, index=position + offset)[1]
            for position, entry in enumerate(raw)
        ]

    async def summary(self) -> FrameworkMessage | None:
        """The thread's persisted summary, or None."""
        with self.errors():
            (entry,) = await self.redis.hmget(self.keys.meta, ["summary"])  # type: ignore[misc]
        if entry is None:
            return None
        return decode_entry(entry, encryption=self.options.encryption, key=self.keys.summary, index=0)[1]

    # -- one entry at a time ---------------------------------------------------------------

    async def entry_at(self, position: int) -> FrameworkMessage | None:
        """The stored message at ``position`` (negative: from the end), or None when there is none."""
        key = self.keys.messages
        with self.errors():
            entry = await self.redis.lindex(key, position)  # type: ignore[misc]
        if entry is None:
            return None
        return decode_entry(entry, encryption=self.options.encryption, key=key, index=position)[1]

    async def replace_at(self, position: int, message: FrameworkMessage) -> bool:
        """Replace the stored message at ``position`` (negative: from the end), atomically; False if out of range."""
        batch = self.encode([message])
        if not batch:
            raise ValueError("a summary message cannot be stored as a message")
        call = set_entry(self.keys, position=position, payload=self._sealed(batch.payloads)[0], entry=batch.index[0])
        with self.errors():
            return int(await call.run(self.redis)) >= 0

    async def find(self, message: FrameworkMessage) -> tuple[int, bytes | str] | None:
        """The position of the first stored message equal to ``message`` and its stored entry, or None.

        Equal: the same ``to_dict()``, whichever generation's spelling the entry was written in.
        """
        wanted = message.to_dict(exclude_none=True)
        key = self.keys.messages
        with self.errors():
            entries = await self.redis.lrange(key, 0, -1)  # type: ignore[misc]
        encryption = self.options.encryption
        for position, entry in enumerate(entries):
            opened = open_entry(entry, encryption=encryption, key=key, index=position)
            if opened.decode()[1].to_dict(exclude_none=True) == wanted:
                return position, entry
        return None

    async def remove(self, message: FrameworkMessage, *, attempts: int = 5) -> bool:
        """Remove the first stored message equal to ``message``, atomically; False if there is none.

        The entry is found, then removed by its stored value wherever concurrent appends and
        trims moved it; should another writer remove or change it in between, it is looked up again.
        """
        for _ in range(attempts):
            found = await self.find(message)
            if found is None:
                return False
            with self.errors():
                if int(await remove_entry(self.keys, stored=found[1]).run(self.redis)) >= 0:
                    return True
        raise RedisStoreError(
            f"could not remove the message from Redis list {self.keys.messages!r}: other writers kept changing it"
        )

    async def count(self) -> int:
        """How many messages the thread holds."""
        with self.errors():
            return int(await self.redis.llen(self.keys.messages))  # type: ignore[misc]

    async def info(self) -> ThreadInfo:
        """Count, times, TTL, labels and approximate bytes, in one round trip."""
        with self.errors():
            return await read_thread_info(self.redis, self.options.key_prefix, self.keys)

    # -- summaries -------------------------------------------------------------------------

    @traced("compact")
    async def compact(self, compaction: SummaryCompaction, *, force: bool = False) -> CompactionResult:
        """Summarize the older messages now if a trigger is exceeded (or ``force``).

        Holds the thread's lease meanwhile, so two instances never summarize it at once; the
        summary is committed only if the lease is still held and the boundary has not moved.
        """
        lease = os.urandom(12).hex()
        self._operation()
        count_round_trips()
        with self.errors():
            acquired = await self.redis.set(
                self.keys.compacting, lease, nx=True, px=int((compaction.timeout + 30) * 1000)
            )
        if not acquired:
            return CompactionResult(False, "another instance is compacting this thread")
        try:
            window = await self._read_window(max_count=None, max_tokens=None, unsummarized_tokens=True)
            tokens = window.unsummarized_tokens
            if tokens is None:
                tokens = sum(self.options.tokenizer.count_tokens(entry.text) for entry in window.entries)
            self._unsummarized = (window.unsummarized, tokens)
            if not force and not compaction.due(window.unsummarized, tokens):
                return CompactionResult(False, "not due", boundary=window.boundary)
            dicts = [entry.decode()[0] for entry in window.entries]
            # A newest call still awaiting its result or approval stays (keep_last_messages=0
            # would otherwise summarize it, and its answer would arrive without it).
            cut = min(len(dicts) - compaction.keep_last_messages, open_group(dicts))
            # The kept messages start where a group starts: summarize fewer rather than split one.
            while (
                0 < cut < len(dicts)
                and shape(dicts[cut], "", self.options.tokenizer, previous=dicts[cut - 1]).continues
            ):
                cut -= 1
            if cut <= 0:
                return CompactionResult(False, "nothing to summarize", boundary=window.boundary)
            previous = _summary_text(window.summary)
            text = await compaction.summarize(previous, dicts[:cut])
            boundary = window.start + cut
            payload = encode_message_dict(compaction.summary_message(text, boundary))
            call = commit_summary(
                self.keys,
                expected_boundary=window.boundary,
                new_boundary=boundary,
                payload=self._seal(payload, self.keys.summary),
                updated_ms=time.time_ns() // 1_000_000,
                lease=lease,
            )
            with self.errors():
                committed = bool(await call.run(self.redis))
            if not committed:
                return CompactionResult(False, "the thread changed meanwhile", boundary=window.boundary)
            self._unsummarized = (window.unsummarized - cut, None)
            return CompactionResult(True, "compacted", summarized=cut, boundary=boundary)
        finally:
            with self.errors():
                await release_lease(self.keys, lease).run(self.redis)

    def schedule_compaction(self) -> None:
        """After a save: compact in the background if a trigger may be exceeded."""
        compaction = self.options.compaction
        if compaction is None or not compaction.background:
            return
        known = self._unsummarized
        if known is None or compaction.due(*known):
            compaction.schedule(self, self._tasks)

    # -- encryption ------------------------------------------------------------------------

    async def rekey(self, *, encrypt_plaintext: bool = False, max_rounds: int = 5, messages: bool = True) -> int:
        """Re-encrypt every entry (the session snapshot and summary too) not under the current key.

        Returns how many were re-encrypted. Each round reads the list, re-encrypts
        client-side and swaps, in one script, each entry still in the list exactly as
        read, wherever a concurrent trim has moved it: appends and trims by other writers
        are never lost or undone. An entry changed meanwhile is retried in the next round.
        Nothing is written when an entry fails to decrypt. ``encrypt_plaintext`` also
        encrypts entries written before encryption was on. ``messages=False``: only the session
        snapshot and the summary.
        """
        encryption = self.options.encryption
        if encryption is None:
            raise ValueError("rekey needs a store created with encryption=")
        key = self.keys.messages
        total = 0
        with self.errors():
            total += await self._rekey_value(
                self.keys.session, "", self.keys.session, encrypt_plaintext=encrypt_plaintext
            )
            summary = (self.keys.meta, "summary", self.keys.summary)
            total += await self._rekey_value(*summary, encrypt_plaintext=encrypt_plaintext)
            if not messages:
                return total
            for _ in range(max_rounds):
                entries = await self.redis.lrange(key, 0, -1)  # type: ignore[misc]
                pairs: list[tuple[bytes | str, str]] = []
                for index, entry in enumerate(entries):
                    if key_id_of(entry) == encryption.key_id:
                        continue
                    text = self._open(entry, key, index, allow_plaintext=encrypt_plaintext)
                    pairs.append((entry, encryption.encrypt(text, context=key)))
                if not pairs:
                    return total
                replaced = int(await replace_unchanged(self.keys, pairs).run(self.redis))
                total += replaced
                if replaced == len(pairs):
                    return total
        raise RedisStoreError(
            f"rekey of Redis list {key!r} did not settle in {max_rounds} rounds: writers with an older key keep "
            "adding entries, or the list is trimmed faster than it can be rewritten; run it again"
        )

    async def _rekey_value(self, key: str, field: str, context: str, *, encrypt_plaintext: bool) -> int:
        """Re-encrypt a string key (or a hash's ``field``), sealed for ``context``, unless under the current key."""
        encryption = self.options.encryption
        assert encryption is not None
        # Errors name this key, not the message list (a session key of another type, say).
        with translate_redis_errors(self.where, key, "a hash" if field else "a string"):
            # EXISTS first: an ACL user of a store that keeps no sessions may not have GET.
            if not await self.redis.exists(key):
                return 0
            # HMGET: the store's ACL user has it (READ_CONTEXT), and may lack HGET.
            value = (await self.redis.hmget(key, [field]))[0] if field else await self.redis.get(key)  # type: ignore[misc]
            if value is None or key_id_of(value) == encryption.key_id:
                return 0
            text = self._open(value, context, 0, allow_plaintext=encrypt_plaintext)
            call = replace_value_unchanged(key, value, encryption.encrypt(text, context=context), field=field)
            return int(await call.run(self.redis))

    # -- internals -------------------------------------------------------------------------

    def errors(self) -> AbstractContextManager[None]:
        """Translate redis-py errors, naming the server and the thread's list."""
        return translate_redis_errors(self.where, self.keys.messages, "a message list")

    async def _read_window(
        self, *, max_count: int | None, max_tokens: int | None, unsummarized_tokens: bool
    ) -> _Window:
        if max_count is None and max_tokens is None and not unsummarized_tokens:
            reply = await self._read_all()
        else:
            call = read_context(self.keys, max_count=max_count, max_tokens=max_tokens, since_tokens=unsummarized_tokens)
            with self.errors():
                reply = await call.run(self.redis)
        start, list_start, _complete, unsummarized, tokens, summary_entry, boundary, payloads = reply
        if (op := self._operation()) is not None:
            op.received(payloads if summary_entry is None else [summary_entry, *payloads])
            op.set(SUMMARY, summary_entry is not None)
            op.set(MESSAGES_UNSUMMARIZED, int(unsummarized))
        key, encryption = self.keys.messages, self.options.encryption
        summary = None
        if summary_entry is not None:
            summary = decode_entry(summary_entry, encryption=encryption, key=self.keys.summary, index=0)[0]
        # A whole list is addressed from its head, a window from its end (LINDEX key -n).
        offset = 0 if int(list_start) == 0 else -len(payloads)
        entries = [
            open_entry(payload, encryption=encryption, key=key, index=position + offset)
            for position, payload in enumerate(payloads)
        ]
        return _Window(
            start=int(start),
            summary=summary,
            boundary=int(boundary),
            unsummarized=int(unsummarized),
            unsummarized_tokens=None if int(tokens) < 0 else int(tokens),
            entries=entries,
        )

    async def _read_all(self) -> list[Any]:
        """READ_CONTEXT's reply without a window: one pipelined round trip of plain commands.

        Faster than the script for a whole thread (no copy of every entry inside Lua); the
        messages before a summary's boundary are read too and dropped here.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.meta, ["first", "summary", "boundary"])
        pipe.lrange(self.keys.messages, 0, -1)
        count_round_trips()
        with self.errors():
            (first, summary, boundary), payloads = await pipe.execute()
        first = meta_int(first, key=self.keys.meta, field="first")
        boundary = meta_int(boundary, key=self.keys.meta, field="boundary")
        after = min(max(boundary - first, 0), len(payloads))
        return [first + after, after, 1, len(payloads) - after, -1, summary, boundary, payloads[after:]]

    def _tokens(self, data: dict[str, Any] | None) -> int:
        return 0 if data is None else self.options.tokenizer.count_tokens(encode_message_dict(data))

    def _fit(self, entries: list[OpenedEntry], budget: int) -> list[OpenedEntry]:
        """The newest entries whose tokens (by this store's tokenizer, on the stored JSON) fit ``budget``."""
        count_tokens = self.options.tokenizer.count_tokens
        start = len(entries)
        while start > 0:
            cost = max(1, count_tokens(entries[start - 1].text))
            if cost > budget:
                break
            budget -= cost
            start -= 1
        return entries[start:]

    def _operation(self) -> Operation | None:
        """The telemetry operation recording in this task, told which thread this is (None: nothing records)."""
        op = current_operation()
        if op is not None:
            op.thread(self.options.key_prefix, self.thread_id, encrypted=self.options.encryption is not None)
        return op

    def _describe_save(self, op: Operation, messages: int, payloads: Sequence[str], *, dedupe: bool) -> None:
        op.set(DEDUPE, dedupe)
        op.set(BATCH_MESSAGES, messages)
        op.sent(payloads)
        if self.options.max_messages is not None:
            op.set(MAX_MESSAGES, self.options.max_messages)

    def _appended(self, count: int, tokens: Sequence[int]) -> None:
        known = self._unsummarized
        if known is not None and count > 0:
            messages, total = known
            self._unsummarized = (messages + count, None if total is None else total + sum(tokens))

    def _header(self, token: str) -> AppendHeader:
        options = self.options
        return AppendHeader(
            self.keys,
            max_messages=options.max_messages,
            ttl_ms=options.ttl_ms,
            token=batch_member(token).hex() if token else "",
            # The writer's clock only orders tokens and stamps activity: clocks need not agree.
            now_us=time.time_ns() // 1000,
            registration=self._registration,
        )

    def _sealed(self, payloads: Sequence[str]) -> Sequence[str]:
        if self.options.encryption is None:
            return payloads
        # Bound to this thread's key, so an entry copied to another thread does not decrypt.
        return [self._seal(payload, self.keys.messages) for payload in payloads]

    def _seal(self, payload: str, context: str) -> str:
        encryption = self.options.encryption
        return payload if encryption is None else encryption.encrypt(payload, context=context)

    def _open(self, entry: bytes | str, key: str, index: int, *, allow_plaintext: bool) -> str:
        opened = decrypt_entry(self.options.encryption, entry, key=key, index=index, allow_plaintext=allow_plaintext)
        try:
            return opened.decode("utf-8") if isinstance(opened, bytes) else opened
        except UnicodeDecodeError:  # plaintext that only looks like JSON: nothing of it is written
            raise CorruptMessageError(key, index, "it is not UTF-8 text") from None

    async def _run(self, call: ScriptCall, now_us: int) -> Any:
        """Run one of the thread's write scripts: the hot path of every turn, so kept lean."""
        try:
            with kept_cancellation():
                if self._registration is not None and self._cluster:
                    applied = await self._run_beside_index(call, now_us // 1000)
                else:
                    applied = await call.run(self.redis)
        except Exception:
            # Translating only on failure keeps the context manager off the success path.
            with self.errors():
                raise
        if eviction_policy_unread(self.redis):  # once per client, after its first write
            await warn_if_evicting(self.redis, self.where)
        return applied

    async def _run_beside_index(self, call: ScriptCall, now_ms: int) -> Any:
        """Redis Cluster: the registry and label index updates go to their nodes at the same time as the script.

        No script of the thread may touch them (other slots). If an update fails the call
        fails, and its retry (same idempotency token) makes it.
        """
        keyspace, member = self.options.keyspace, self.thread_id
        if self._labels_indexed is None:
            count_round_trips()  # the HGET of the labels, once per store
            self._labels_indexed = decode_labels(await self.redis.hget(self.keys.meta, "labels"))  # type: ignore[misc]
        labels = self.options.labels if self.options.labels is not None else self._labels_indexed
        added_to = keyspace.label_indexes(labels)
        removed_from = [i for i in keyspace.label_indexes(self._labels_indexed) if i not in added_to]  # relabelled
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keyspace.registry, {member: now_ms})
        for index in added_to:
            pipe.zadd(index, {member: now_ms})
        for index in removed_from:
            pipe.zrem(index, member)
        count_round_trips()  # the pipeline; the script counts its own
        index_update = asyncio.ensure_future(pipe.execute())
        try:
            applied = await call.run(self.redis)
        except BaseException:
            index_update.cancel()
            raise
        try:
            added, *_ = await index_update
        except ResponseError as err:
            if not is_wrong_type(err):
                raise
            raise _wrong_type_beside(err, [keyspace.registry, *added_to, *removed_from]) from err
        self._labels_indexed = dict(labels)
        if added and await self.redis.zcard(keyspace.registry) == 1:  # type: ignore[misc]
            # The first thread of a new prefix: its label indexes are complete (as the scripts mark it).
            await self.redis.set(keyspace.labels_complete, "complete")
        return applied


def _wrong_type_beside(err: ResponseError, keys: Sequence[str]) -> RedisStoreError:
    """A registry or label index of the wrong type on Redis Cluster (``keys``: the pipeline's, in order)."""
    # redis-py's pipelines name the failed command's position: "Command # 2 (ZADD ...) of pipeline caused error".
    found = re.match(r"Command # (\d+) ", str(err))
    position = int(found.group(1)) - 1 if found else -1
    key = repr(keys[position]) if 0 <= position < len(keys) else "the registry or a label index"
    return RedisStoreError(
        f"Redis key {key} holds another type than the sorted set the store keeps there: the messages were "
        "stored, the thread's entry there was not updated; inspect it with TYPE, then repair or delete it"
    )


def _summary_text(summary: dict[str, Any] | None) -> str | None:
    """The text of a stored summary message, without the prefix the model sees."""
    if summary is None:
        return None
    texts = [c.get("text", "") for c in summary.get("contents", []) if isinstance(c, dict) and c.get("type") == "text"]
    return " ".join(texts).removeprefix(SUMMARY_PREFIX) or None
