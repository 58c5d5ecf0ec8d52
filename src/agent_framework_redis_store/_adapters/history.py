"""``RedisChatHistoryProvider``: Agent Framework 1.x session history in Redis.

A thin adapter over ``ThreadStorage``: the session id is the thread id and the key
layout is the store's, so a session continues a thread that a legacy ``AgentThread`` wrote
with the same ``key_prefix`` (and the reverse). Needs agent-framework-core 1.x.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, ClassVar, Unpack

from agent_framework import AgentSession, HistoryProvider, Message, SessionContext, SupportsAgentRun

from .._core.compaction import CompactionResult
from .._core.connection import ClientOwner, RedisClient
from .._core.keyspace import validate_thread_id
from .._core.options import StoreOptionAttributes, StoreOptions, ThreadOptions, parse_options
from .._core.telemetry import traced
from .._core.thread import ThreadStorage
from .store import RedisChatMessageStore, wait_for

__all__ = ["RedisChatHistoryProvider"]

# How many sessions' stores the provider keeps at hand.
_RECENT_STORES = 1024
# The idempotency key of the run whose after_run is saving, handed to save_messages (which
# the framework calls without one).
_RUN_SAVE_KEY: ContextVar[str | None] = ContextVar("agent_framework_redis_store_run_save_key", default=None)


def _session_id(session_id: object) -> str:
    if session_id is None:
        # agent-framework-redis's legacy key format stored a missing id under "{key_prefix}:default",
        # one thread shared by every caller that lost its session: one user's history would reach another.
        raise ValueError(
            "session_id is required (got None): RedisChatHistoryProvider keeps no shared default thread; "
            "pass the session's id (Agent.run gives every session one, e.g. agent.create_session())"
        )
    return validate_thread_id(session_id, name="session_id")


class RedisChatHistoryProvider(StoreOptionAttributes, ClientOwner, HistoryProvider):
    """An Agent Framework 1.x ``HistoryProvider`` that keeps each session's messages in Redis.

    ``Agent(client, "...", context_providers=[RedisChatHistoryProvider(redis_url)])``
    remembers every session; a session restored with ``AgentSession.from_dict`` (any
    process) continues the same history, because the session id is the Redis thread id.

    Saving a turn is one atomic round trip that never reads the stored history, and it
    never stores a message twice: a run persisted twice, a retried save or a replayed
    transcript adds only what is new (see ``RedisChatMessageStore.add_new_messages``).
    All sessions share one bounded connection pool.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Alternatively give ``host``,
            ``connection``, a ready ``redis_client``, or set ``REDIS_URL``.

    Keyword Args:
        source_id: The provider's id in the agent's context pipeline.
        load_messages, store_inputs, store_outputs, store_context_messages, store_context_from:
            The framework's ``HistoryProvider`` switches.
        redis_client: A ``redis.asyncio`` client to use; never closed by the provider.
        **options: ``StoreOptions``, as ``RedisChatMessageStore`` takes them (``key_prefix``:
            the same as a legacy store's to share its threads; ``max_messages``, ``ttl``,
            ``encryption``, ``labels``, ``registry`` and the connection options).
            ``max_connections`` sizes the shared pool; callers beyond it wait for a connection.
    """

    DEFAULT_SOURCE_ID: ClassVar[str] = "redis_history"

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        source_id: str = DEFAULT_SOURCE_ID,
        load_messages: bool = True,
        store_inputs: bool = True,
        store_outputs: bool = True,
        store_context_messages: bool = False,
        store_context_from: set[str] | None = None,
        redis_client: RedisClient | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        if not isinstance(source_id, str) or not source_id:
            raise ValueError("source_id must be a non-empty str")
        super().__init__(
            source_id,
            load_messages=load_messages,
            store_inputs=store_inputs,
            store_context_messages=store_context_messages,
            store_context_from=store_context_from,
            store_outputs=store_outputs,
        )
        self._options, connection = parse_options(type(self).__name__, options, StoreOptions)
        self._open_client(redis_client, redis_url, connection)
        self._tasks: set[asyncio.Task[None]] = set()  # background compactions
        self._run_save_keys: weakref.WeakKeyDictionary[SessionContext, str] = weakref.WeakKeyDictionary()
        # Recently used sessions' threads: making one is cheap, but not free on every turn.
        self._recent: OrderedDict[str, ThreadStorage] = OrderedDict()

    @property
    def options(self) -> ThreadOptions:
        """The validated store options every session gets."""
        return self._options

    def store_for(self, session_id: str) -> RedisChatMessageStore:
        """The ``RedisChatMessageStore`` of one session (``list_messages``, ``count``, ``clear``, ``ping``).

        It uses the provider's shared pool; its ``aclose()`` leaves the pool open.
        """
        return RedisChatMessageStore._on_client_of(self, _session_id(session_id), self._options, self._tasks)

    def _thread(self, session_id: str | None) -> ThreadStorage:
        session_id = _session_id(session_id)
        thread = self._recent.get(session_id)
        if thread is None:
            thread = self._recent[session_id] = ThreadStorage(
                self._redis, session_id, self._options, where=self._where(), tasks=self._tasks
            )
            if len(self._recent) > _RECENT_STORES:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(session_id)
        return thread

    @traced("load")
    async def get_messages(
        self, session_id: str | None, *, state: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Message]:
        """What the model gets, oldest first: the summary (if any), then the newest messages after it.

        Without ``context_messages``, ``context_tokens`` or a summary that is every stored
        message; cut only where a tool-call group starts, never a tool result without its call.
        ``session_id=None`` raises ``ValueError``: there is no shared default thread.
        """
        return await self._thread(session_id).context()

    @traced("save")
    async def save_messages(
        self,
        session_id: str | None,
        messages: Sequence[Message],
        *,
        state: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Append the messages the session does not already end with, in one round trip.

        A save repeated with the same ``idempotency_key`` stores nothing; without one, a
        run's ``after_run`` uses one key per run. ``session_id=None`` raises ``ValueError`` and
        stores nothing: there is no shared default thread.
        """
        _session_id(session_id)  # checked before anything else, even for an empty batch
        if not isinstance(messages, Sequence) or isinstance(messages, Message):
            raise TypeError(f"messages must be a sequence of messages, got {type(messages).__name__}")
        if not messages:
            return
        token = idempotency_key or _RUN_SAVE_KEY.get() or uuid.uuid4().hex
        thread = self._thread(session_id)
        await thread.append_new(thread.encode(messages, fingerprints=True), token=token)
        thread.schedule_compaction()

    async def after_run(
        self,
        *,
        agent: SupportsAgentRun,
        session: AgentSession,
        context: SessionContext,
        state: dict[str, Any],
    ) -> None:
        """Store the run's messages as the framework's ``HistoryProvider`` does, at most once per run."""
        key = self._run_save_keys.get(context)
        if key is None:
            key = self._run_save_keys[context] = f"run:{uuid.uuid4().hex}"
        token = _RUN_SAVE_KEY.set(key)
        try:
            await super().after_run(agent=agent, session=session, context=context, state=state)
        finally:
            _RUN_SAVE_KEY.reset(token)

    async def transcript(self, session_id: str, *, last: int | None = None) -> list[Message]:
        """Every stored message of the session, summarized or not (the log for a UI, export or audit)."""
        return await self.store_for(session_id).transcript(last=last)

    async def compact(self, session_id: str, *, force: bool = False) -> CompactionResult:
        """Summarize the session's older messages now if the ``compaction=`` trigger is exceeded."""
        compaction = self._options.compaction
        if compaction is None:
            raise ValueError("compact() needs a provider created with compaction=SummaryCompaction(...)")
        return await self._thread(session_id).compact(compaction, force=force)

    async def wait_for_compaction(self) -> None:
        """Wait until the background compactions started by this provider's saves are done."""
        await wait_for(self._tasks)

    async def aclose(self) -> None:
        """Wait for background compactions, then close the shared pool if the provider created it."""
        await wait_for(self._tasks)
        await super().aclose()

    async def clear(self, session_id: str) -> None:
        """Delete every key of the session's thread (history, summary, session snapshot, bookkeeping), and its
        registry entry."""
        await self._thread(session_id).clear()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source_id={self.source_id!r}, options={self._options!r}, "
            f"redis={self._redis_repr()!r})"
        )
