"""``RedisSessionStore``: whole Agent Framework 1.x sessions (state included) in Redis.

A snapshot is the JSON of the framework's own ``AgentSession.to_dict()`` in one string key
beside the session's messages (``{key_prefix}:{<id>}:session``, same hash slot), so a
suspended session survives restarts and moves between app instances. Needs
agent-framework-core 1.x.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Unpack

from agent_framework import AgentSession, SessionStore

from .._core.connection import ClientOwner, RedisClient, eviction_policy_unread, warn_if_evicting
from .._core.errors import CorruptSessionError, translate_redis_errors
from .._core.keyspace import validate_thread_id
from .._core.options import SessionStoreOptions, parse_options
from .._core.records import open_session_snapshot

__all__ = ["RedisSessionStore"]


class RedisSessionStore(ClientOwner, SessionStore):
    """The framework's ``SessionStore`` (``get``, ``set``, ``delete``) backed by Redis.

    A missing or expired id reads as None; a snapshot that cannot be restored raises
    ``CorruptSessionError`` naming the session id and key.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Alternatively give ``host``,
            ``connection``, a ready ``redis_client``, or set ``REDIS_URL``.

    Keyword Args:
        redis_client: A ``redis.asyncio`` client to use (e.g. ``provider.redis_client``); never closed here.
        **options: ``SessionStoreOptions``: ``key_prefix`` (the history provider's, to keep a
            session beside its messages), ``ttl`` (seconds of inactivity after which a snapshot
            expires; every ``get`` and ``set`` refreshes it), ``encryption`` (snapshots are
            sealed like messages) and the connection options.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis_client: RedisClient | None = None,
        **options: Unpack[SessionStoreOptions],
    ) -> None:
        self._options, connection = parse_options(type(self).__name__, options, SessionStoreOptions)
        self._keyspace = self._options.keyspace
        self._open_client(redis_client, redis_url, connection)

    @property
    def ttl(self) -> float | None:
        """The sliding expiry in seconds, or None."""
        return self._options.ttl

    def key_for(self, session_id: str) -> str:
        """The Redis key of a session's snapshot."""
        return self._keyspace.thread(validate_thread_id(session_id, name="session_id")).session

    async def get(self, session_id: str) -> AgentSession | None:
        """The stored session, or None when there is none (or it expired). Refreshes the TTL."""
        key = self.key_for(session_id)
        with self._redis_errors(key):
            if self._options.ttl is None:
                raw = await self._redis.get(key)
            else:
                raw = await self._redis.getex(key, px=self._options.ttl_ms)
        if raw is None:
            return None
        data = open_session_snapshot(raw, session_id=session_id, key=key, encryption=self._options.encryption)
        try:
            return AgentSession.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise CorruptSessionError(session_id, key, f"{type(err).__name__}: {err}") from err

    async def set(self, session_id: str, session: AgentSession) -> None:
        """Store ``session`` under ``session_id``, replacing any earlier snapshot."""
        key = self.key_for(session_id)
        if not isinstance(session, AgentSession):
            raise TypeError(f"session must be an AgentSession, got {type(session).__name__}")
        try:
            snapshot = json.dumps(session.to_dict(), separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"session {session_id!r} holds state that does not serialize to JSON ({err}); "
                f"keep JSON values or register the type with agent_framework.register_state_type"
            ) from err
        encryption = self._options.encryption
        if encryption is not None:
            snapshot = encryption.encrypt(snapshot, context=key)
        with self._redis_errors(key):
            await self._redis.set(key, snapshot, px=self._options.ttl_ms or None)
        if eviction_policy_unread(self._redis):  # once per client, after its first write
            await warn_if_evicting(self._redis, self._where())

    async def delete(self, session_id: str) -> None:
        """Delete the stored session, if any."""
        key = self.key_for(session_id)
        with self._redis_errors(key):
            await self._redis.delete(key)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(key_prefix={self._options.key_prefix!r}, ttl={self.ttl!r}, "
            f"redis={self._redis_repr()!r})"
        )

    def _redis_errors(self, key: str) -> AbstractContextManager[None]:
        return translate_redis_errors(self._where(), key, "a session snapshot")
