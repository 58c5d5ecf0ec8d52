"""Bringing conversations from other Redis chat stores into this package's layout.

A migration reads another store's threads (``migrate_sources.py`` knows where each store
keeps them and what its entries mean) and writes each into a ``RedisThreadRegistry``'s key
prefix, on the same server or another:

1. SCAN the source for the store's keys (lists only) and name each thread. Several keys
   naming one thread are a conflict: none of them is written.
2. For each thread: read the source list (and its TTL), convert and check every entry,
   read the target thread. The same messages there: skipped. Other messages: reported
   and left alone unless ``replace``.
3. Write it with ``import_thread``: one atomic script, so a thread is either wholly there
   or absent. An interrupted run (Ctrl-C, a dropped connection) leaves whole threads,
   and running it again skips them and writes the rest: it completes exactly.
4. With ``delete_source``: read the written thread back, compare, and delete the source
   key only if it is unchanged since it was read (WATCH), in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import redis.asyncio
from redis.exceptions import ResponseError, WatchError

from .._core.codec import message_from_dict
from .._core.errors import CorruptMessageError, ThreadNotFoundError, translate_redis_errors
from .._core.options import validate_labels
from .migrate_sources import (
    AgentFrameworkRedisLayout,
    EntryError,
    LangChainLayout,
    SourceLayout,
    SourceThread,
)
from .registry import RedisThreadRegistry, ThreadRecord

__all__ = [
    "MigrationProgress",
    "MigrationReport",
    "ThreadMigration",
    "migrate_agent_framework_redis",
    "migrate_langchain",
]

Outcome = Literal["migrated", "replaced", "skipped", "differs", "conflict", "failed", "gone"]
# Outcomes that leave a source thread without its copy: a run with any of them is not done.
PROBLEMS = ("differs", "conflict", "failed")
_SCAN_COUNT = 500
_HOLDS = "a list (the source store's thread)"


@dataclass(frozen=True)
class ThreadMigration:
    """What a migration did (or, in a dry run, would do) with one source thread.

    ``outcome``: ``migrated`` (written), ``replaced`` (written over a thread that differed,
    with ``replace``), ``skipped`` (the target already holds these messages), ``differs``
    (the target holds other messages; left alone), ``conflict`` (several source keys name
    this thread id; none written), ``failed`` (unreadable; ``detail`` says why), ``gone``
    (the source key vanished before it was read).
    """

    thread_id: str | None
    source_keys: tuple[str, ...]
    outcome: Outcome
    messages: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    source_deleted: bool = False
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "thread_id": self.thread_id,
            "source_keys": list(self.source_keys),
            "outcome": self.outcome,
            "messages": self.messages,
            "labels": self.labels,
            "source_deleted": self.source_deleted,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class MigrationProgress:
    """Where a migration stands: ``total`` is None while the source is still being scanned."""

    scanned: int
    """Source keys examined so far."""
    done: int
    """Threads finished."""
    total: int | None
    thread: ThreadMigration | None = None
    """The thread just finished (None while scanning)."""


@dataclass(frozen=True)
class MigrationReport:
    """The outcome of a migration, thread by thread, with its totals."""

    source: str
    """``agent-framework-redis`` or ``langchain``."""
    dry_run: bool
    threads: tuple[ThreadMigration, ...]
    ignored_keys: int = 0
    """Keys the patterns matched that hold no thread of the source (other types, this package's own keys)."""

    def _count(self, *outcomes: Outcome) -> int:
        return sum(1 for t in self.threads if t.outcome in outcomes)

    @property
    def migrated(self) -> int:
        """Threads written (or to be written), replaced ones included."""
        return self._count("migrated", "replaced")

    @property
    def replaced(self) -> int:
        """Threads written over target threads that held other messages (``replace``)."""
        return self._count("replaced")

    @property
    def messages(self) -> int:
        """Messages in the threads written (or to be written)."""
        return sum(t.messages for t in self.threads if t.outcome in ("migrated", "replaced"))

    @property
    def skipped(self) -> int:
        """Threads already in the target with the same messages."""
        return self._count("skipped")

    @property
    def conflicts(self) -> int:
        """Thread ids that several source keys name."""
        return self._count("conflict")

    @property
    def differing(self) -> int:
        """Threads the target holds with other messages, left alone."""
        return self._count("differs")

    @property
    def failed(self) -> int:
        """Source threads that cannot be copied: unreadable entries, keys naming no thread id."""
        return self._count("failed")

    @property
    def sources_deleted(self) -> int:
        """Source keys deleted after a verified copy (in a dry run: that would be)."""
        return sum(len(t.source_keys) for t in self.threads if t.source_deleted)

    @property
    def complete(self) -> bool:
        """True when every source thread is in the target: no conflict, difference or failure."""
        return not any(t.outcome in PROBLEMS for t in self.threads)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready totals and every thread's outcome."""
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "threads_found": len(self.threads),
            "migrated": self.migrated,
            "replaced": self.replaced,
            "messages": self.messages,
            "skipped": self.skipped,
            "conflicts": self.conflicts,
            "differing": self.differing,
            "failed": self.failed,
            "gone": self._count("gone"),
            "sources_deleted": self.sources_deleted,
            "ignored_keys": self.ignored_keys,
            "threads": [t.to_dict() for t in self.threads],
        }


async def migrate_agent_framework_redis(
    source: redis.asyncio.Redis,
    target: RedisThreadRegistry,
    *,
    source_key_prefix: str = "chat_messages",
    source_id: str | None = None,
    thread_id_template: str | None = None,
    labels: Mapping[str, str] | None = None,
    dry_run: bool = False,
    replace: bool = False,
    delete_source: bool = False,
    on_progress: Callable[[MigrationProgress], None] | None = None,
    concurrency: int = 8,
) -> MigrationReport:
    """Copy the threads of Microsoft's agent-framework-redis stores into ``target``.

    Finds, under ``source_key_prefix``, the legacy ``RedisChatMessageStore`` and the 1.x
    ``RedisHistoryProvider`` with ``key_format="legacy"`` (``{prefix}:{id}``) and the 1.x
    provider's scoped keys (``{prefix}|v2|{tenant}|{application}|{agent}|{source_id}|{session_id}``).
    The thread id is the thread or session id; tenant, application and agent become the
    labels ``tenant``, ``application`` and ``agent`` (with ``labels`` added to every thread).
    ``source_id`` keeps only that provider's scoped keys. Two keys with one session id are a
    conflict; ``thread_id_template`` (e.g. ``"{application}:{session_id}"``) names scoped
    threads apart. Messages are copied as stored: both framework generations read them.

    Safe to run again: threads already copied are skipped, so an interrupted run completes.
    ``dry_run`` writes nothing; ``replace`` overwrites target threads that hold other
    messages; ``delete_source`` deletes each source key after its copy is read back and
    found equal. ``on_progress`` is called while scanning and after each thread.
    """
    layout = AgentFrameworkRedisLayout(source_key_prefix, source_id=source_id, thread_id_template=thread_id_template)
    return await _Migration(
        layout, source, target, labels, dry_run, replace, delete_source, on_progress, concurrency
    ).run()


async def migrate_langchain(
    source: redis.asyncio.Redis,
    target: RedisThreadRegistry,
    *,
    source_key_prefix: str = "message_store:",
    labels: Mapping[str, str] | None = None,
    dry_run: bool = False,
    replace: bool = False,
    delete_source: bool = False,
    on_progress: Callable[[MigrationProgress], None] | None = None,
    concurrency: int = 8,
) -> MigrationReport:
    """Copy LangChain's community ``RedisChatMessageHistory`` histories into ``target``.

    Each ``{source_key_prefix}{session_id}`` list (newest first) becomes the thread
    ``session_id``, oldest first, as framework messages, converted as
    ``agent_framework_redis_store.langchain.from_langchain_dicts`` converts them (and as
    ``RedisChatMessageHistory`` reads them back): human/ai/system/tool become
    user/assistant/system/tool, tool calls and tool call ids are kept (``function_call`` /
    ``function_result`` contents), and LangChain metadata without a framework field is kept
    under ``additional_properties["langchain"]``. The other arguments are those of
    ``migrate_agent_framework_redis``.
    """
    layout = LangChainLayout(source_key_prefix)
    return await _Migration(
        layout, source, target, labels, dry_run, replace, delete_source, on_progress, concurrency
    ).run()


# -- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    thread: SourceThread
    raw_key: bytes | str  # as SCAN returned it: the exact bytes to read and delete


class _Migration:
    def __init__(
        self,
        layout: SourceLayout,
        source: redis.asyncio.Redis,
        target: RedisThreadRegistry,
        labels: Mapping[str, str] | None,
        dry_run: bool,
        replace: bool,
        delete_source: bool,
        on_progress: Callable[[MigrationProgress], None] | None,
        concurrency: int,
    ) -> None:
        if not isinstance(source, redis.asyncio.Redis):
            raise TypeError(
                f"source must be a redis.asyncio.Redis client (a standalone server), got {type(source).__name__}"
            )
        if not isinstance(target, RedisThreadRegistry):
            raise TypeError(f"target must be a RedisThreadRegistry, got {type(target).__name__}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
        self._layout = layout
        self._source = source
        self._target = target
        self._labels = validate_labels(labels) or {}
        self._dry_run = dry_run
        self._replace = replace
        self._delete_source = delete_source
        self._on_progress = on_progress
        self._concurrency = concurrency
        self._where = _describe(source)
        self._scanned = 0
        self._done = 0

    async def run(self) -> MigrationReport:
        jobs, finished, ignored = await self._plan()
        total = len(jobs) + len(finished)
        results: list[ThreadMigration] = []
        for result in finished:
            self._finish(results, result, total)
        pending = iter(jobs)

        async def worker() -> None:
            for job in pending:  # one shared iterator: each job is taken by one worker
                self._finish(results, await self._move(job), total)

        workers = [asyncio.create_task(worker()) for _ in range(min(self._concurrency, len(jobs)))]
        try:
            await asyncio.gather(*workers)
        finally:
            # The first error (a dropped connection, an on_progress that raised) ends the run;
            # each thread is written atomically, so what the other workers leave is whole.
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        results.sort(key=lambda t: (t.thread_id or "", t.source_keys))
        return MigrationReport(self._layout.name, self._dry_run, tuple(results), ignored)

    def _finish(self, results: list[ThreadMigration], result: ThreadMigration, total: int) -> None:
        results.append(result)
        self._done += 1
        if self._on_progress is not None:
            self._on_progress(MigrationProgress(self._scanned, self._done, total, result))

    async def _plan(self) -> tuple[list[_Job], list[ThreadMigration], int]:
        """The source's threads: jobs to run, outcomes known from the keys alone, keys ignored."""
        found: dict[str, _Job] = {}
        ignored = 0
        with translate_redis_errors(self._where, self._layout.patterns[0], _HOLDS):
            try:
                cluster = await self._source.info("cluster")
            except ResponseError:  # a user without INFO: a standalone server, as before
                cluster = {}
        if cluster.get("cluster_enabled") in (1, "1"):
            # A SCAN of one node sees only its own slots: the others' threads would go unnoticed.
            raise ValueError(
                f"the source Redis at {self._where} is a Redis Cluster node, and migrate reads a standalone "
                "server (a SCAN of one node would miss the threads on the others)"
            )
        for pattern in self._layout.patterns:
            with translate_redis_errors(self._where, pattern, _HOLDS):
                async for raw_key in self._source.scan_iter(match=pattern, count=_SCAN_COUNT, _type="list"):
                    self._scanned += 1
                    if self._on_progress is not None and self._scanned % _SCAN_COUNT == 0:
                        self._on_progress(MigrationProgress(self._scanned, 0, None))
                    try:
                        key = raw_key.decode("utf-8") if isinstance(raw_key, bytes) else raw_key
                    except UnicodeDecodeError:
                        name = raw_key.decode("utf-8", errors="backslashreplace")
                        found[name] = _Job(SourceThread(name, None, problem="the key is not UTF-8 text"), raw_key)
                        continue
                    thread = self._layout.thread(key)
                    if thread is None:
                        ignored += 1
                    else:
                        found[key] = _Job(thread, raw_key)  # SCAN may return a key twice
        by_id: dict[str, list[_Job]] = {}
        finished: list[ThreadMigration] = []
        for job in found.values():
            thread = job.thread
            if thread.thread_id is None or thread.problem is not None:
                finished.append(_outcome(thread, "failed", detail=thread.problem or "no thread id"))
            else:
                by_id.setdefault(thread.thread_id, []).append(job)
        jobs: list[_Job] = []
        for thread_id, group in sorted(by_id.items()):
            if len(group) == 1:
                jobs.append(group[0])
                continue
            keys = tuple(sorted(job.thread.key for job in group))
            finished.append(
                ThreadMigration(
                    thread_id,
                    keys,
                    "conflict",
                    detail=f"{len(keys)} source keys name thread {thread_id!r}; none was copied "
                    "(a thread id template such as '{application}:{session_id}' names them apart)",
                )
            )
        finished.sort(key=lambda t: (t.thread_id or "", t.source_keys))
        return jobs, finished, ignored

    async def _move(self, job: _Job) -> ThreadMigration:
        """Copy one thread; with ``delete_source``, delete its key once the copy is verified."""
        if not self._delete_source or self._dry_run:
            with self._source_errors(job):
                pipe = self._source.pipeline(transaction=True)
                pipe.lrange(job.raw_key, 0, -1)
                pipe.pttl(job.raw_key)
                entries, pttl = await pipe.execute()
            result, verified = await self._copy(job, entries, pttl)
            if self._dry_run and self._delete_source and verified:
                result = replace(result, source_deleted=True)
            return result
        async with self._source.pipeline(transaction=True) as pipe:
            with self._source_errors(job):
                # Watched from the read on: the key is deleted only if nothing wrote to it since.
                await pipe.watch(job.raw_key)
                entries = await pipe.lrange(job.raw_key, 0, -1)
                pttl = await pipe.pttl(job.raw_key)
            result, verified = await self._copy(job, entries, pttl)
            if not verified:
                return result
            with self._source_errors(job):
                pipe.multi()
                pipe.delete(job.raw_key)
                try:
                    await pipe.execute()
                except WatchError:
                    return replace(result, detail=_join(result.detail, "the source changed after it was read: kept"))
        return replace(result, source_deleted=True)

    def _source_errors(self, job: _Job) -> AbstractContextManager[None]:
        # Only around source commands: the target's errors already name the target.
        return translate_redis_errors(self._where, job.thread.key, _HOLDS)

    async def _copy(self, job: _Job, entries: Sequence[bytes | str], pttl: int) -> tuple[ThreadMigration, bool]:
        """The outcome for one thread, and whether the target now holds exactly its messages."""
        thread = job.thread
        thread_id = thread.thread_id
        assert thread_id is not None
        if not entries:
            return _outcome(thread, "gone", detail="the source key expired or was deleted before it was read"), False
        try:
            messages = self._layout.messages([_text(entry, index) for index, entry in enumerate(entries)])
            for index, message in enumerate(messages):
                _check(message, index)
        except EntryError as err:
            return _outcome(thread, "failed", detail=f"{thread.key!r} {err}"), False
        labels = {**thread.labels, **self._labels}
        existing, unreadable = await self._read_target(thread_id)
        replacing = False
        if existing is not None or unreadable:
            same = None if unreadable else _compare(existing or [], messages)
            if same is not None and same[0]:
                return _outcome(thread, "skipped", len(messages), labels, detail=same[1]), True
            if not self._replace:
                reason = unreadable or (same[1] if same else "")
                return _outcome(thread, "differs", len(messages), labels, detail=reason), False
            replacing = True
        outcome: Outcome = "replaced" if replacing else "migrated"
        if self._dry_run:
            return _outcome(thread, outcome, len(messages), labels), True
        record = ThreadRecord(
            thread_id=thread_id,
            messages=messages,
            labels=labels,
            created_at=None,
            last_active=None,
            ttl=None,
            # A source key that was to expire still does, at the same moment.
            ttl_remaining=pttl / 1000 if pttl > 0 else None,
        )
        if not await self._target.import_thread(record, replace=replacing):
            detail = "the thread was created in the target while it was being copied; left alone"
            return _outcome(thread, "differs", len(messages), labels, detail=detail), False
        if not self._delete_source:
            return _outcome(thread, outcome, len(messages), labels), True
        written, _ = await self._read_target(thread_id)
        # Compared as the framework reads them: the store writes messages compacted (codec.compact_message).
        if written is None or _normalized(written) != _normalized(messages):
            detail = "written, but reading it back gave other messages (written to meanwhile?): the source was kept"
            return _outcome(thread, outcome, len(messages), labels, detail=detail), False
        return _outcome(thread, outcome, len(messages), labels), True

    async def _read_target(self, thread_id: str) -> tuple[list[dict[str, Any]] | None, str]:
        """The target thread's messages (None: absent), or why they cannot be read."""
        try:
            return (await self._target.export_thread(thread_id)).messages, ""
        except ThreadNotFoundError:
            return None, ""
        except CorruptMessageError as err:
            return None, f"the target thread cannot be read ({err})"


def _outcome(
    thread: SourceThread,
    outcome: Outcome,
    messages: int = 0,
    labels: dict[str, str] | None = None,
    *,
    detail: str = "",
) -> ThreadMigration:
    labels = labels if labels is not None else thread.labels
    return ThreadMigration(thread.thread_id, (thread.key,), outcome, messages, labels, detail=detail)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _text(entry: bytes | str, index: int) -> str:
    if isinstance(entry, str):
        return entry
    try:
        return entry.decode("utf-8")
    except UnicodeDecodeError as err:
        raise EntryError(index, "not UTF-8 text") from err


def _check(message: dict[str, Any], index: int) -> None:
    """Raise ``EntryError`` unless the installed framework reads ``message``."""
    try:
        message_from_dict(message)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        raise EntryError(index, f"not a message this framework reads ({type(err).__name__}: {err})") from err


def _normalized(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # The messages as the installed framework reads them: either generation's spelling compares equal.
    return [message_from_dict(m).to_dict(exclude_none=True) for m in messages]


def _compare(existing: list[dict[str, Any]], messages: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether the target already holds ``messages`` (and how), or how it differs."""
    if existing == messages:
        return True, ""
    have, want = _normalized(existing), _normalized(messages)
    if have == want:
        return True, ""
    if len(have) > len(want) and have[: len(want)] == want:
        # Migrated before, then continued by the application: the copy is done.
        return True, f"the target thread continues with {len(have) - len(want)} newer message(s)"
    first = next((i for i, (a, b) in enumerate(zip(have, want, strict=False)) if a != b), min(len(have), len(want)))
    return False, (
        f"the target thread holds {len(have)} message(s), the source {len(want)}; they differ from index {first} "
        "(replace copies the source over it)"
    )


def _describe(client: redis.asyncio.Redis) -> str:
    """Where ``client`` connects, without credentials (for errors)."""
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']} (the source)"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)} (the source)"
