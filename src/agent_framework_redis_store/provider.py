"""``RedisChatHistoryProvider``: Agent Framework 1.x session history in Redis.

A thin adapter over ``RedisChatMessageStore``: the session id is the thread id and the key
layout is the store's, so a session continues a thread that a legacy ``AgentThread`` wrote
with the same ``key_prefix`` (and the reverse). Needs agent-framework-core 1.x.
"""

from __future__ import annotations

import uuid
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, ClassVar, Self

from agent_framework import AgentSession, HistoryProvider, Message, SessionContext, SupportsAgentRun
from redis.asyncio.retry import Retry
from redis.credentials import CredentialProvider

from .connections import RedisClient
from .encryption import MessageEncryption
from .keys import validate_thread_id
from .store import RedisChatMessageStore, RedisStoreFactory

__all__ = ["RedisChatHistoryProvider"]

# How many sessions' stores the provider keeps at hand.
_RECENT_STORES = 1024
# The idempotency key of the run whose after_run is saving, handed to save_messages (which
# the framework calls without one).
_RUN_SAVE_KEY: ContextVar[str | None] = ContextVar("agent_framework_redis_store_run_save_key", default=None)


class RedisChatHistoryProvider(HistoryProvider):
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
            a ready ``redis_client``, or set ``REDIS_URL``.

    Keyword Args:
        key_prefix: Namespace of the Redis keys; the same as a legacy store's to share its threads.
        max_messages: Keep only the newest N messages of each session (None: keep all).
        ttl: Seconds of inactivity after which a session's history expires; every save refreshes it.
        encryption: Encrypt message bodies at rest (e.g. ``AESGCMEncryption``).
        labels: str-to-str labels recorded in the thread registry for every session (e.g. ``{"app": "support"}``).
        redis_client: A ``redis.asyncio`` client to use; never closed by the provider.
        source_id: The provider's id in the agent's context pipeline.
        load_messages, store_inputs, store_outputs, store_context_messages, store_context_from:
            The framework's ``HistoryProvider`` switches.
        credential_provider, host, port, db, ssl, username, password, retry, socket_timeout:
            Connection settings used when ``redis_client`` is not given.
        max_connections: Size of the shared pool; callers beyond it wait for a free connection.
        cluster: Connect to a Redis Cluster (any node's URL), as ``RedisChatMessageStore`` does.
    """

    DEFAULT_SOURCE_ID: ClassVar[str] = "redis_history"

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        key_prefix: str = "chat_messages",
        max_messages: int | None = None,
        ttl: float | timedelta | None = None,
        encryption: MessageEncryption | None = None,
        labels: Mapping[str, str] | None = None,
        redis_client: RedisClient | None = None,
        source_id: str = DEFAULT_SOURCE_ID,
        load_messages: bool = True,
        store_inputs: bool = True,
        store_outputs: bool = True,
        store_context_messages: bool = False,
        store_context_from: set[str] | None = None,
        credential_provider: CredentialProvider | None = None,
        host: str | None = None,
        port: int = 6379,
        db: int = 0,
        ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        retry: Retry | None = None,
        socket_timeout: float | None = 5.0,
        max_connections: int = 32,
        cluster: bool = False,
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
        self._stores = RedisStoreFactory(
            redis_url,
            redis_client=redis_client,
            key_prefix=key_prefix,
            max_messages=max_messages,
            ttl=ttl,
            encryption=encryption,
            labels=labels,
            credential_provider=credential_provider,
            host=host,
            port=port,
            db=db,
            ssl=ssl,
            username=username,
            password=password,
            retry=retry,
            socket_timeout=socket_timeout,
            max_connections=max_connections,
            cluster=cluster,
        )
        self._run_save_keys: weakref.WeakKeyDictionary[SessionContext, str] = weakref.WeakKeyDictionary()
        # Stores of recently used sessions: making one is cheap, but not free on every turn.
        self._recent: OrderedDict[str, RedisChatMessageStore] = OrderedDict()

    @property
    def redis_client(self) -> RedisClient:
        """The ``redis.asyncio`` client shared by every session."""
        return self._stores.redis_client

    def store_for(self, session_id: str) -> RedisChatMessageStore:
        """The ``RedisChatMessageStore`` of one session (``list_messages``, ``count``, ``clear``, ``ping``).

        It uses the provider's shared pool; its ``aclose()`` leaves the pool open.
        """
        return self._stores.store(validate_thread_id(session_id, name="session_id"))

    def _store(self, session_id: str | None) -> RedisChatMessageStore:
        if session_id is None:
            raise ValueError(
                "session_id is required: RedisChatHistoryProvider keeps history per session "
                "(pass session=agent.create_session() to agent.run)"
            )
        store = self._recent.get(session_id)
        if store is None:
            store = self._recent[session_id] = self.store_for(session_id)
            if len(self._recent) > _RECENT_STORES:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(session_id)
        return store

    async def get_messages(
        self, session_id: str | None, *, state: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Message]:
        """The session's stored messages, oldest first."""
        return await self._store(session_id).list_messages()

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
        run's ``after_run`` uses one key per run.
        """
        await self._store(session_id).add_new_messages(messages, idempotency_key=idempotency_key or _RUN_SAVE_KEY.get())

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

    async def clear(self, session_id: str) -> None:
        """Delete the session's stored history."""
        await self._store(session_id).clear()

    async def aclose(self) -> None:
        """Close the shared pool if the provider created it; a caller's ``redis_client`` stays open."""
        await self._stores.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source_id={self.source_id!r}, stores={self._stores!r})"
