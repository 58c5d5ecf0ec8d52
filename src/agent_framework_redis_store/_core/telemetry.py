"""OpenTelemetry: a span and a duration measurement per operation, and nothing when no SDK is set up.

``traced(operation)`` wraps a public async method: span ``agent_framework_redis_store.<operation>``
(kind INTERNAL: a logical operation over one or more Redis round trips) and a measurement of
the histogram ``agent_framework_redis_store.operation.duration``. The storage code adds what
it knows to the running operation (``current_operation()``): message counts, bytes, round
trips, window sizes. Every attribute this package records is named in this module, so what it
records can be audited in one place; docs/TELEMETRY.md lists them.

Never recorded: message text or any other message content, label values, Redis URLs, hosts,
usernames or passwords, key names (they contain thread ids), exception messages and
stack traces (messages name keys and servers; a traceback's source lines may hold a literal
password). Thread ids only when ``configure_telemetry(thread_ids=...)`` opts in.

With no SDK configured (no tracer or meter provider set, globally or here), a traced call
costs one look at OpenTelemetry's global provider slots, and the storage hooks find no running
operation. ``opentelemetry-api`` comes with agent-framework-core in both generations; should
it ever be missing, nothing is traced (an SDK, which needs the API, cannot be configured either).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import logging
import os
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

if TYPE_CHECKING:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace

    _API = True
else:
    try:
        from opentelemetry import context as otel_context
        from opentelemetry import metrics as otel_metrics
        from opentelemetry import trace as otel_trace

        _API = True
    except ImportError:  # pragma: no cover - agent-framework-core depends on opentelemetry-api
        _API = False

__all__ = ["Operation", "configure_telemetry", "count_round_trips", "current_operation", "traced"]

logger = logging.getLogger("agent_framework_redis_store")

NAMESPACE = "agent_framework_redis_store"
DURATION_METRIC = f"{NAMESPACE}.operation.duration"

# -- attributes: every name this package records -----------------------------------------------

# OpenTelemetry semantic conventions.
DB_SYSTEM = "db.system.name"  # always "redis"
DB_OPERATION = "db.operation.name"  # the operation: save, load, ..., registry.purge
CODE_FUNCTION = "code.function.name"  # the method called: agent_framework_redis_store.<Class>.<method>
ERROR_TYPE = "error.type"  # the exception's class, never its message

# This package's, under its namespace.
KEY_PREFIX = f"{NAMESPACE}.key_prefix"
THREAD_ID = f"{NAMESPACE}.thread_id"  # only with thread_ids="plain"
THREAD_ID_HMAC = f"{NAMESPACE}.thread_id.hmac"  # only with thread_ids="hmac"
ENCRYPTED = f"{NAMESPACE}.encrypted"
ROUND_TRIPS = f"{NAMESPACE}.round_trips"  # requests sent to Redis (a pipeline is one)
DEDUPE = f"{NAMESPACE}.dedupe"  # save: True skips messages the thread already ends with
BATCH_MESSAGES = f"{NAMESPACE}.batch.messages"  # messages handed to a save (or a summarizer)
BATCH_ALREADY_APPLIED = f"{NAMESPACE}.batch.already_applied"  # save: its idempotency key was seen
SEED_MESSAGES = f"{NAMESPACE}.seed.messages"  # save: the messages= seed written first
MESSAGES_WRITTEN = f"{NAMESPACE}.messages.written"
MESSAGES_SKIPPED = f"{NAMESPACE}.messages.skipped"  # save: repeats the dedupe skipped, or an applied batch
MESSAGES_READ = f"{NAMESPACE}.messages.read"  # entries read from Redis
MESSAGES_RETURNED = f"{NAMESPACE}.messages.returned"  # messages handed back (a summary included)
MESSAGES_UNSUMMARIZED = f"{NAMESPACE}.messages.unsummarized"  # messages after the summary
MESSAGES_SUMMARIZED = f"{NAMESPACE}.messages.summarized"  # compact: newly covered by the summary
THREAD_MESSAGES = f"{NAMESPACE}.thread.messages"  # save: the thread's length after it
BYTES_SENT = f"{NAMESPACE}.bytes.sent"  # stored form (sealed if encrypted), UTF-8
BYTES_RECEIVED = f"{NAMESPACE}.bytes.received"
MAX_MESSAGES = f"{NAMESPACE}.max_messages"  # save: the trim limit
WINDOW_MAX_MESSAGES = f"{NAMESPACE}.window.max_messages"  # load: context_messages / last
WINDOW_MAX_TOKENS = f"{NAMESPACE}.window.max_tokens"  # load: context_tokens
SUMMARY = f"{NAMESPACE}.summary"  # a summary was read (load) / exported / imported
SUMMARY_PREVIOUS = f"{NAMESPACE}.summary.previous"  # summarize: a previous summary is folded in
COMPACTION_FORCED = f"{NAMESPACE}.compaction.forced"
COMPACTION_COMPACTED = f"{NAMESPACE}.compaction.compacted"
COMPACTION_REASON = f"{NAMESPACE}.compaction.reason"  # CompactionResult.reason: a fixed phrase
COMPACTION_TRIGGER_MESSAGES = f"{NAMESPACE}.compaction.trigger_messages"
COMPACTION_TRIGGER_TOKENS = f"{NAMESPACE}.compaction.trigger_tokens"
COMPACTION_KEEP_LAST = f"{NAMESPACE}.compaction.keep_last_messages"
REGISTRY_LIMIT = f"{NAMESPACE}.registry.limit"
REGISTRY_LABEL_FILTERS = f"{NAMESPACE}.registry.label_filters"  # how many; never their keys or values
REGISTRY_ACTIVE_SINCE = f"{NAMESPACE}.registry.active_since"  # a time filter was given
REGISTRY_CONTINUED = f"{NAMESPACE}.registry.continued"  # a cursor was given
REGISTRY_MORE = f"{NAMESPACE}.registry.more"  # another page follows
REGISTRY_DRY_RUN = f"{NAMESPACE}.registry.dry_run"
REGISTRY_OLDER_THAN = f"{NAMESPACE}.registry.older_than_seconds"
REGISTRY_REPLACE = f"{NAMESPACE}.registry.replace"
REGISTRY_IMPORTED = f"{NAMESPACE}.registry.imported"
THREADS_RETURNED = f"{NAMESPACE}.threads.returned"
THREADS_REQUESTED = f"{NAMESPACE}.threads.requested"
THREADS_DELETED = f"{NAMESPACE}.threads.deleted"
THREADS_PURGED = f"{NAMESPACE}.threads.purged"
THREADS_EXPIRED = f"{NAMESPACE}.threads.expired"  # registry entries of threads gone by TTL
THREADS_KEPT = f"{NAMESPACE}.threads.kept"
THREADS_TOTAL = f"{NAMESPACE}.threads.total"  # stats
THREADS_INDEXED = f"{NAMESPACE}.threads.indexed"  # reindex
THREADS_WRITTEN_DURING = f"{NAMESPACE}.threads.written_during"  # erase: appeared while it ran
KEYS_DELETED = f"{NAMESPACE}.keys.deleted"  # erase
MESSAGES_DELETED = f"{NAMESPACE}.messages.deleted"  # erase
ERASE_COMPLETE = f"{NAMESPACE}.erase.complete"
FORK_UPTO = f"{NAMESPACE}.fork.upto"  # fork: the first N messages copied (absent: all)
MESSAGES_TOTAL = f"{NAMESPACE}.messages.total"  # stats
CHECKPOINTS_TRIMMED = f"{NAMESPACE}.checkpoints.trimmed"  # checkpoint.save: the oldest deleted by keep_last

AttributeValue = str | bool | int | float

# Operations on one thread count their round trips (the registry's walk many threads).
_THREAD_OPERATIONS = frozenset({"save", "load", "transcript", "compact"})

# Seconds: a local round trip is ~0.1 ms, a summarizer call many seconds.
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# -- configuration ---------------------------------------------------------------------------

ThreadIds = Literal["omit", "hmac", "plain"]


@dataclass(frozen=True, slots=True)
class _Settings:
    enabled: bool = True
    thread_ids: ThreadIds = "omit"
    thread_id_key: bytes = b""
    tracer_provider: Any = None
    meter_provider: Any = None


@dataclass(frozen=True, slots=True)
class _Instruments:
    tracer: Any
    duration: Any


_settings = _Settings()
_instruments: _Instruments | None = None  # made on the first operation that records


def configure_telemetry(
    *,
    enabled: bool = True,
    thread_ids: ThreadIds = "omit",
    thread_id_key: bytes | str | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
) -> None:
    """Set how this package reports to OpenTelemetry (process-wide; each call replaces the whole setting).

    By default spans and the duration histogram go to the global providers when the
    application has configured an OpenTelemetry SDK, and nothing happens when it has not.

    Keyword Args:
        enabled: False records nothing, even with an SDK configured.
        thread_ids: ``"omit"`` (default): spans carry no thread id (they are often user ids).
            ``"hmac"``: ``agent_framework_redis_store.thread_id.hmac``, the first 32 hex digits of
            HMAC-SHA256(``thread_id_key``, thread id): the same thread correlates across spans and
            processes, and without the key the id cannot be recovered or guessed.
            ``"plain"``: ``agent_framework_redis_store.thread_id``, the id itself.
        thread_id_key: The HMAC key (at least 16 bytes), required with ``"hmac"``.
        tracer_provider, meter_provider: Providers to use instead of the global ones.
    """
    global _settings, _instruments
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
    if thread_ids not in ("omit", "hmac", "plain"):
        raise ValueError(f"thread_ids must be 'omit', 'hmac' or 'plain', got {thread_ids!r}")
    key = thread_id_key.encode("utf-8") if isinstance(thread_id_key, str) else thread_id_key
    if thread_ids == "hmac":
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("thread_ids='hmac' needs thread_id_key: a secret of at least 16 bytes")
    elif key is not None:
        raise ValueError("thread_id_key is used only with thread_ids='hmac'")
    _settings = _Settings(enabled, thread_ids, key or b"", tracer_provider, meter_provider)
    _instruments = None


def _package_version() -> str:
    try:
        return version("agent-framework-redis-store")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0"


def _make_instruments() -> _Instruments:
    global _instruments
    settings, release = _settings, _package_version()
    if settings.tracer_provider is not None:
        tracer = settings.tracer_provider.get_tracer(NAMESPACE, release)
    else:
        tracer = otel_trace.get_tracer(NAMESPACE, release)
    meter = (
        settings.meter_provider.get_meter(NAMESPACE, release)
        if settings.meter_provider is not None
        else otel_metrics.get_meter(NAMESPACE, release)
    )
    duration = meter.create_histogram(
        DURATION_METRIC,
        unit="s",
        description="Duration of one agent_framework_redis_store operation (db.operation.name)",
        explicit_bucket_boundaries_advisory=_BUCKETS,
    )
    _instruments = _Instruments(tracer, duration)
    return _instruments


def _global_sdk_check() -> Callable[[], bool]:
    """A cheap "has the application set a tracer or meter provider?".

    The public getters read the environment on every call (~1 us); OpenTelemetry's global
    slots answer in a few nanoseconds. Should they ever be renamed, every operation is
    traced through the (then possibly no-op) global providers: correct, a few us slower.
    """
    if not _API:
        return lambda: False
    try:
        from opentelemetry.metrics import _internal as metrics_internal

        _ = (otel_trace._TRACER_PROVIDER, metrics_internal._METER_PROVIDER)  # pyright: ignore[reportPrivateUsage]
    except (ImportError, AttributeError):  # pragma: no cover - another opentelemetry-api layout
        return lambda: True
    if "OTEL_PYTHON_TRACER_PROVIDER" in os.environ or "OTEL_PYTHON_METER_PROVIDER" in os.environ:
        return lambda: True  # providers named by the environment are made on first use

    def configured() -> bool:
        return (
            otel_trace._TRACER_PROVIDER is not None  # pyright: ignore[reportPrivateUsage]
            or metrics_internal._METER_PROVIDER is not None  # pyright: ignore[reportPrivateUsage]
        )

    return configured


_global_sdk = _global_sdk_check()


def _recording() -> bool:
    settings = _settings
    return settings.enabled and (
        settings.tracer_provider is not None or settings.meter_provider is not None or _global_sdk()
    )


# -- the running operation -------------------------------------------------------------------


class Operation:
    """One traced call: its span, and the attributes the storage code adds while it runs.

    Attributes are kept here and set on the span once, when it ends.
    """

    __slots__ = ("_attributes", "_context_token", "_current_token", "_span", "_start", "name", "round_trips")

    def __init__(self, name: str, code_function: str, *, counts_round_trips: bool) -> None:
        self.name = name
        self.round_trips: int | None = 0 if counts_round_trips else None
        self._attributes: dict[str, AttributeValue] = {}
        instruments = _instruments or _make_instruments()
        self._span = instruments.tracer.start_span(
            f"{NAMESPACE}.{name}",
            kind=otel_trace.SpanKind.INTERNAL,
            attributes={DB_SYSTEM: "redis", DB_OPERATION: name, CODE_FUNCTION: code_function},
        )
        self._context_token = otel_context.attach(otel_trace.set_span_in_context(self._span))
        # Only a recording span collects attributes; otherwise the hooks find no operation.
        self._current_token: Token[Operation | None] | None = _current.set(self) if self._span.is_recording() else None
        self._start = time.perf_counter()

    def set(self, name: str, value: AttributeValue) -> None:
        """Record ``name`` (one of this module's attribute names)."""
        self._attributes[name] = value

    def add(self, name: str, amount: int) -> None:
        """Add ``amount`` to the count ``name``."""
        attributes = self._attributes
        attributes[name] = int(attributes.get(name, 0)) + amount

    def thread(self, key_prefix: str, thread_id: str, *, encrypted: bool | None = None) -> None:
        """Which thread: the key prefix, and the thread id as ``configure_telemetry`` allows."""
        self._attributes[KEY_PREFIX] = key_prefix
        self.thread_id(thread_id)
        if encrypted is not None:
            self._attributes[ENCRYPTED] = encrypted

    def thread_id(self, thread_id: object) -> None:
        """The thread id, hashed, plain or not at all, as ``configure_telemetry`` allows."""
        settings = _settings
        if settings.thread_ids == "omit" or not isinstance(thread_id, str):
            return
        if settings.thread_ids == "plain":
            self._attributes[THREAD_ID] = thread_id
        else:
            digest = hmac.new(settings.thread_id_key, thread_id.encode("utf-8", "surrogatepass"), hashlib.sha256)
            self._attributes[THREAD_ID_HMAC] = digest.hexdigest()[:32]

    def sent(self, payloads: Sequence[str]) -> None:
        """Entries sent to Redis, in their stored form."""
        self.add(BYTES_SENT, _size(payloads))

    def received(self, payloads: Sequence[bytes | str]) -> None:
        """Entries read from Redis: how many, and their bytes."""
        self.add(MESSAGES_READ, len(payloads))
        self.add(BYTES_RECEIVED, _size(payloads))

    def end(self, error: BaseException | None) -> None:
        duration = time.perf_counter() - self._start
        if self._current_token is not None:
            _current.reset(self._current_token)
        otel_context.detach(self._context_token)
        span = self._span
        measured: dict[str, AttributeValue] = {DB_SYSTEM: "redis", DB_OPERATION: self.name}
        if error is not None:
            # The type only: messages name keys (thread ids) and servers, and may quote data.
            measured[ERROR_TYPE] = self._attributes[ERROR_TYPE] = _error_type(error)
            span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR))
            span.add_event("exception", {"exception.type": measured[ERROR_TYPE]})
        if self.round_trips is not None:
            self._attributes[ROUND_TRIPS] = self.round_trips
        span.set_attributes(self._attributes)
        span.end()
        (_instruments or _make_instruments()).duration.record(duration, measured)


_current: ContextVar[Operation | None] = ContextVar("agent_framework_redis_store_operation", default=None)

#: The operation running in this task that records attributes, or None (always None without an SDK).
current_operation = _current.get


def count_round_trips(count: int = 1) -> None:
    """Count requests sent to Redis for the running operation on one thread (a pipeline is one)."""
    op = _current.get()
    if op is not None and op.round_trips is not None:
        op.round_trips += count


def _size(payloads: Sequence[bytes | str]) -> int:
    # str.isascii() is O(1): only non-ASCII text is encoded to be measured.
    return sum(
        len(p) if isinstance(p, bytes) or p.isascii() else len(p.encode("utf-8", "surrogatepass")) for p in payloads
    )


def _error_type(error: BaseException) -> str:
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# -- the decorator ---------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])

_PENDING: Any = object()  # what a describer gets as the result before the call returns

Describer = Callable[[Operation, Mapping[str, Any], Any], None]


def traced(operation: str) -> Callable[[F], F]:
    """Trace an async method as ``operation``: a span and a duration measurement per call.

    The key prefix is taken from the instance's ``key_prefix`` if it has one; the operation's
    describer (below) records its arguments before the call and its result after.
    """
    describe = _DESCRIBERS.get(operation)
    counts_round_trips = operation in _THREAD_OPERATIONS

    def decorate(fn: F) -> F:
        if not _API:  # pragma: no cover
            return fn
        # As users see it (agent_framework_redis_store.RedisChatMessageStore.add_messages): the
        # modules behind the public names are private and may move.
        code_function = f"{NAMESPACE}.{fn.__qualname__}"
        signature = inspect.signature(fn) if describe is not None else None

        @functools.wraps(fn)
        async def traced_call(*args: Any, **kwargs: Any) -> Any:
            if not _recording():
                return await fn(*args, **kwargs)
            op = Operation(operation, code_function, counts_round_trips=counts_round_trips)
            arguments: Mapping[str, Any] = {}
            try:
                key_prefix = getattr(args[0], "key_prefix", None) if args else None
                if isinstance(key_prefix, str):
                    op.set(KEY_PREFIX, key_prefix)
                if signature is not None and describe is not None:
                    bound = signature.bind(*args, **kwargs)
                    bound.apply_defaults()
                    arguments = bound.arguments
                    describe(op, arguments, _PENDING)
            except Exception:  # telemetry never fails a call; the call itself reports bad arguments
                logger.debug("telemetry: could not describe %s", operation, exc_info=True)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                op.end(error)
                raise
            if describe is not None and arguments:
                try:
                    describe(op, arguments, result)
                except Exception:
                    logger.debug("telemetry: could not describe the result of %s", operation, exc_info=True)
            op.end(None)
            return result

        return cast(F, traced_call)

    return decorate


# -- what each operation records of its arguments and result -----------------------------------
#
# The operations on one thread (save, load, transcript) are described by ThreadStorage as it
# works; these describe the others from their arguments (result _PENDING) and results.


def _describe_compact(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is _PENDING:
        compaction = arguments["compaction"]
        op.set(COMPACTION_FORCED, bool(arguments.get("force")))
        op.set(COMPACTION_KEEP_LAST, compaction.keep_last_messages)
        if compaction.trigger_messages is not None:
            op.set(COMPACTION_TRIGGER_MESSAGES, compaction.trigger_messages)
        if compaction.trigger_tokens is not None:
            op.set(COMPACTION_TRIGGER_TOKENS, compaction.trigger_tokens)
        return
    op.set(COMPACTION_COMPACTED, result.compacted)
    op.set(COMPACTION_REASON, result.reason)
    op.set(MESSAGES_SUMMARIZED, result.summarized)


def _describe_summarize(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is _PENDING:
        op.set(BATCH_MESSAGES, len(arguments["messages"]))
        op.set(SUMMARY_PREVIOUS, arguments.get("previous") is not None)


def _describe_list(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is _PENDING:
        limit, labels = arguments.get("limit"), arguments.get("labels")
        if isinstance(limit, int):
            op.set(REGISTRY_LIMIT, limit)
        op.set(REGISTRY_LABEL_FILTERS, len(labels) if isinstance(labels, Mapping) else 0)
        op.set(REGISTRY_ACTIVE_SINCE, arguments.get("active_since") is not None)
        op.set(REGISTRY_CONTINUED, arguments.get("cursor") is not None)
        return
    op.set(THREADS_RETURNED, len(result.threads))
    op.set(REGISTRY_MORE, result.next_cursor is not None)


def _describe_purge(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is _PENDING:
        op.set(REGISTRY_DRY_RUN, bool(arguments.get("dry_run")))
        older_than = arguments.get("older_than")
        if isinstance(older_than, timedelta):
            older_than = older_than.total_seconds()
        if isinstance(older_than, int | float) and not isinstance(older_than, bool):
            op.set(REGISTRY_OLDER_THAN, float(older_than))
        return
    op.set(THREADS_PURGED, result.purged)
    op.set(THREADS_EXPIRED, result.expired)
    op.set(THREADS_KEPT, result.kept)


def _describe_export(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is _PENDING:
        op.thread_id(arguments.get("thread_id"))
        return
    op.set(MESSAGES_READ, len(result.messages))
    op.set(SUMMARY, result.summary is not None)


def _describe_import(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    record = arguments["record"]
    if result is _PENDING:
        op.thread_id(record.thread_id)
        op.set(REGISTRY_REPLACE, bool(arguments.get("replace")))
        op.set(BATCH_MESSAGES, len(record.messages))
        op.set(SUMMARY, record.summary is not None)
        op.set(ENCRYPTED, arguments["self"].encryption is not None)
        return
    op.set(REGISTRY_IMPORTED, bool(result))
    op.set(MESSAGES_WRITTEN, len(record.messages) if result else 0)


def _describe_delete(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is _PENDING:
        thread_ids = arguments.get("thread_ids")
        if isinstance(thread_ids, Sequence):
            op.set(THREADS_REQUESTED, len(thread_ids))
        return
    op.set(THREADS_DELETED, int(result))


def _describe_stats(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is not _PENDING:
        op.set(THREADS_TOTAL, result.threads)
        op.set(MESSAGES_TOTAL, result.messages)
        op.set(THREADS_EXPIRED, result.expired_removed)


def _describe_erase(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is _PENDING:
        labels = arguments.get("labels")
        op.set(REGISTRY_LABEL_FILTERS, len(labels) if isinstance(labels, Mapping) else 0)
        op.set(REGISTRY_DRY_RUN, bool(arguments.get("dry_run")))
        return
    op.set(THREADS_DELETED, len(result.thread_ids))
    op.set(THREADS_WRITTEN_DURING, len(result.written_during))
    op.set(KEYS_DELETED, result.keys_deleted)
    op.set(MESSAGES_DELETED, result.messages_deleted)
    op.set(ERASE_COMPLETE, result.complete)


def _describe_reindex(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    if result is not _PENDING:
        op.set(THREADS_INDEXED, int(result))


def _describe_fork(op: Operation, arguments: Mapping[str, Any], result: Any) -> None:
    # Neither id is recorded for a store's fork (the store reports its own thread for its other
    # operations through the storage hooks); the registry's names the source, under the opt-in.
    if result is _PENDING:
        if "thread_id" in arguments:
            op.thread_id(arguments["thread_id"])
        upto = arguments.get("upto")
        if isinstance(upto, int) and not isinstance(upto, bool):
            op.set(FORK_UPTO, upto)


_DESCRIBERS: dict[str, Describer] = {
    "compact": _describe_compact,
    "summarize": _describe_summarize,
    "registry.list": _describe_list,
    "registry.purge": _describe_purge,
    "registry.export": _describe_export,
    "registry.import": _describe_import,
    "registry.delete": _describe_delete,
    "registry.stats": _describe_stats,
    "registry.erase": _describe_erase,
    "registry.reindex": _describe_reindex,
    "registry.fork": _describe_fork,
    "fork": _describe_fork,
}
