"""Rotating encryption keys over a whole key prefix, while the application runs."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from redis.exceptions import NoPermissionError, ResponseError

from .._core.cluster import RedisClient
from .._core.encryption import MessageEncryption, decrypt_entry, key_id_of
from .._core.errors import (
    CorruptMessageError,
    DecryptionError,
    cancel_requests,
    is_wrong_type,
    raise_if_cancelled,
    translate_redis_errors,
    wrong_type_kept,
)
from .._core.keyspace import COMPANION_SUFFIXES, DEFAULT_KEY_PREFIX, Keyspace, ThreadKeys, WorkflowKeys
from .._core.lua import replace_checkpoints_unchanged
from .._core.options import ThreadOptions
from .._core.thread import ThreadStorage

__all__ = ["RekeyProgress", "rekey_prefix"]

# The keys that hold sealed values, in the order that picks the one a thread is rekeyed from
# (SCAN returns each of a thread's keys: the first that exists stands for the thread), with
# the type each holds.
_SEALED = {"": "list", "meta": "hash", "session": "string"}
_WHERE = "the given redis client"


@dataclass(frozen=True)
class RekeyProgress:
    """Where a prefix-wide ``rekey_prefix`` stands."""

    threads_seen: int
    threads_changed: int
    entries_rekeyed: int
    thread_id: str | None = None  # the thread just finished
    skipped: tuple[tuple[str, str], ...] = ()
    """(key, reason) of every key left alone: a key under the prefix that is not this layout's,
    one of another type than the store writes, or a thread with an entry that cannot be decrypted."""
    checkpoints_rekeyed: int = 0
    """Workflow checkpoints (``RedisCheckpointStorage``) re-sealed with the current key."""


async def rekey_prefix(
    redis: RedisClient,
    encryption: MessageEncryption,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    encrypt_plaintext: bool = False,
    on_progress: Callable[[RekeyProgress], None] | None = None,
    scan_count: int = 500,
) -> RekeyProgress:
    """Re-encrypt every thread under ``key_prefix`` (messages, summary and session snapshot) with the current key.

    Walks the keys with SCAN, every key of every thread: a thread that holds only a session
    snapshot (or only a summary) is rekeyed too. Workflow checkpoints (``RedisCheckpointStorage``)
    are re-sealed too, each bound to its workflow and id as before (their timelines and the
    checkpoint index name ids, which stay as they are); a checkpoint that cannot be decrypted
    is left alone and its workflow's key listed in ``skipped``. A maintenance operation: safe while the
    application runs (entries are swapped only if unchanged, see ``RedisChatMessageStore.rekey``)
    and safe to run again after an interruption. SCAN may visit a thread twice; the second visit
    finds nothing to do. A key that is not this layout's, or of another type, and a thread with an
    entry that cannot be decrypted are left alone and listed in ``skipped``; the rest is finished.
    ``on_progress`` is called after each thread.
    """
    rekeying = _Rekeying(redis, encryption, Keyspace(key_prefix), encrypt_plaintext, on_progress)
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", f"{key_prefix}:{{") + "*"
    batch: list[bytes | str] = []
    with translate_redis_errors(_WHERE, pattern, "keys of this layout"):
        requested = cancel_requests()
        async for raw_key in redis.scan_iter(match=pattern, count=scan_count):
            raise_if_cancelled(requested)  # a cancel Python 3.11's wait_for dropped inside SCAN
            batch.append(raw_key)
            if len(batch) >= scan_count:
                await rekeying.visit(batch)
                batch = []
        await rekeying.visit(batch)
    return rekeying.progress()


class _Rekeying:
    """One ``rekey_prefix`` walk: its counts and what it skipped."""

    def __init__(
        self,
        redis: RedisClient,
        encryption: MessageEncryption,
        keyspace: Keyspace,
        encrypt_plaintext: bool,
        on_progress: Callable[[RekeyProgress], None] | None,
    ) -> None:
        self._redis = redis
        self._where = _WHERE
        self._keyspace = keyspace
        self._options = ThreadOptions(key_prefix=keyspace.prefix, encryption=encryption, registry=False)
        self._current = encryption.key_id
        self._encrypt_plaintext = encrypt_plaintext
        self._on_progress = on_progress
        self._seen = self._changed = self._rekeyed = self._checkpoints = 0
        self._workflows: list[WorkflowKeys] = []  # scanned, not rekeyed yet
        self._thread_id: str | None = None
        self._skipped: dict[str, str] = {}  # key -> reason: SCAN may return a key twice
        self._skipped_view: tuple[tuple[str, str], ...] = ()

    def progress(self) -> RekeyProgress:
        """The counts so far."""
        if len(self._skipped_view) != len(self._skipped):
            self._skipped_view = tuple(self._skipped.items())
        return RekeyProgress(
            self._seen, self._changed, self._rekeyed, self._thread_id, self._skipped_view, self._checkpoints
        )

    def _skip(self, key: str, reason: str) -> None:
        self._skipped.setdefault(key, reason)

    async def visit(self, raw_keys: Sequence[bytes | str]) -> None:
        """Rekey the threads these scanned keys stand for."""
        visited: dict[str, set[str]] = {}  # thread id -> the suffixes scanned
        for raw_key in raw_keys:
            owner = self._owner(raw_key)
            if owner is not None and owner[1] in _SEALED:
                visited.setdefault(owner[0], set()).add(owner[1])
        workflows, self._workflows = self._workflows, []
        for workflow in workflows:
            await self._rekey_workflow(workflow)
        if not visited:
            return
        threads = [self._keyspace.thread(thread_id) for thread_id in visited]
        # Which keys exist, and (a command of each key's type: WRONGTYPE if it holds another)
        # the sealed values; only commands the store's own ACL user has, SCAN and GET aside.
        pipe = self._redis.pipeline(transaction=False)
        for keys in threads:
            pipe.exists(keys.messages)
            pipe.exists(keys.meta)
            pipe.exists(keys.session)
            pipe.llen(keys.messages)
            pipe.hmget(keys.meta, ["summary"])
        replies = wrong_type_kept(await pipe.execute(raise_on_error=False))
        width = 5
        sessions = [keys for n, keys in enumerate(threads) if replies[n * width + 2]]
        pipe = self._redis.pipeline(transaction=False)
        for keys in sessions:
            pipe.get(keys.session)
        stored = dict(
            zip(sessions, wrong_type_kept(await pipe.execute(raise_on_error=False)) if sessions else [], strict=True)
        )
        for n, keys in enumerate(threads):
            *present, length, summary = replies[n * width : (n + 1) * width]
            values = {"": length, "meta": summary, "session": stored.get(keys)}
            wrong = [suffix for suffix, value in values.items() if is_wrong_type(value)]
            for suffix in wrong:
                self._skip(_key(keys, suffix), f"holds another type than the {_SEALED[suffix]} this layout keeps there")
            first = next((suffix for suffix, here in zip(_SEALED, present, strict=True) if here), None)
            if wrong or first is None:
                continue  # left alone, or gone meanwhile
            scanned = visited[keys.thread_id]
            if first in scanned:
                await self._rekey(keys)
            elif any(self._due(values[suffix]) for suffix in scanned):
                # The thread's first key stands for it, but SCAN may not return a key made during
                # the walk: a sealed value under an older key, scanned here, is rekeyed here.
                await self._rekey(keys, messages=False)

    def _due(self, value: object) -> bool:
        """Whether a value read (HMGET's list, GET's value, or an error) is sealed under another key."""
        if isinstance(value, list):
            value = value[0] if value else None
        key_id = key_id_of(value) if isinstance(value, bytes | str) else None
        return key_id is not None and key_id != self._current

    async def _rekey(self, keys: ThreadKeys, *, messages: bool = True) -> None:
        thread = ThreadStorage(self._redis, keys.thread_id, self._options, where=self._where)
        if messages:
            self._seen += 1
            self._thread_id = keys.thread_id
        try:
            count = await thread.rekey(encrypt_plaintext=self._encrypt_plaintext, messages=messages)
        except CorruptMessageError as err:  # decryption included: nothing of that value was written
            self._skip(err.key.removesuffix("#summary"), str(err))
        else:
            self._changed += 1 if count and messages else 0
            self._rekeyed += count
        if self._on_progress is not None and messages:
            self._on_progress(self.progress())

    async def _rekey_workflow(self, keys: WorkflowKeys) -> None:
        """Re-seal a workflow's checkpoints with the current key, each only if unchanged meanwhile."""
        encryption = self._options.encryption
        assert encryption is not None
        resealed: list[tuple[str, bytes | str, str]] = []
        try:
            async for raw_id, stored in self._redis.hscan_iter(keys.checkpoints, count=100):  # type: ignore[misc]
                checkpoint_id = raw_id.decode("utf-8") if isinstance(raw_id, bytes) else raw_id
                key_id = key_id_of(stored)
                if key_id == self._current or (key_id is None and not self._encrypt_plaintext):
                    continue
                context = keys.body_context(checkpoint_id)
                try:
                    opened = decrypt_entry(encryption, stored, key=context, index=0, allow_plaintext=True)
                except DecryptionError as err:
                    self._skip(keys.checkpoints, f"checkpoint {checkpoint_id!r} cannot be decrypted: {err.reason}")
                    continue
                text = opened.decode("utf-8") if isinstance(opened, bytes) else opened
                resealed.append((checkpoint_id, stored, encryption.encrypt(text, context=context)))
                if len(resealed) >= 100:
                    self._checkpoints += await replace_checkpoints_unchanged(keys, resealed).run(self._redis)
                    resealed = []
            if resealed:
                self._checkpoints += await replace_checkpoints_unchanged(keys, resealed).run(self._redis)
        except NoPermissionError:
            # A user given only the threads' rules: the threads are rekeyed, the checkpoints reported.
            self._skip(
                keys.checkpoints,
                "workflow checkpoints this user may not walk: grant +hscan to re-encrypt them (docs/CHECKPOINTS.md)",
            )
        except ResponseError as err:
            if not is_wrong_type(err) and "WRONGTYPE_KEY" not in str(err):
                raise
            self._skip(keys.checkpoints, "holds another type than the hash this layout keeps there")

    def _owner(self, raw_key: bytes | str) -> tuple[str, str] | None:
        """(thread id, suffix) of a key of this layout; None (and reported) for any other key."""
        key = raw_key.decode("utf-8", "backslashreplace") if isinstance(raw_key, bytes) else raw_key
        head = f"{self._keyspace.prefix}:{{"
        encoded, brace, rest = key[len(head) :].partition("}")
        suffix = rest.removeprefix(":")
        if brace and encoded.startswith("wf:") and rest in (":checkpoints", ":timeline"):
            # A workflow's checkpoints (RedisCheckpointStorage): rekeyed by their bodies' key.
            try:
                workflow = self._keyspace.workflow(unquote(encoded.removeprefix("wf:"), errors="strict"))
            except ValueError:
                workflow = None
            if workflow is not None and key in workflow.owned:
                if key == workflow.checkpoints:
                    self._workflows.append(workflow)
                return None
        if brace and "{" not in encoded and (rest == "" or (rest != suffix and suffix in COMPANION_SUFFIXES)):
            try:
                thread_id = unquote(encoded, errors="strict")
                # The one spelling the store writes: a key spelled otherwise is not a thread's.
                if _key(self._keyspace.thread(thread_id), suffix) == key:
                    return thread_id, suffix
            except ValueError:  # not UTF-8 once decoded, or not a thread id
                pass
        self._skip(key, "not a key of this layout")
        return None


def _key(keys: ThreadKeys, suffix: str) -> str:
    return keys.messages + (f":{suffix}" if suffix else "")
