"""``RedisSessionStore``: whole Agent Framework 1.x sessions (state included) in Redis.

A snapshot is the JSON of the framework's own ``AgentSession.to_dict()`` in one string key
beside the session's messages (``{key_prefix}:{<id>}:session``, same hash slot), so a
suspended session survives restarts and moves between app instances. Needs
agent-framework-core 1.x.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from agent_framework import AgentSession, SessionStore
from redis.asyncio.retry import Retry
from redis.credentials import CredentialProvider

from .connections import ClientOwner, RedisClient
from .errors import CorruptSessionError, translate_redis_errors
from .keys import session_key, validate_key_prefix, validate_thread_id
from .store import _validate_ttl

__all__ = ["RedisSessionStore"]


class RedisSessionStore(ClientOwner, SessionStore):
    """The framework's ``SessionStore`` (``get``, ``set``, ``delete``) backed by Redis.

    A missing or expired id reads as None; a snapshot that cannot be restored raises
    ``CorruptSessionError`` naming the session id and key.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Alternatively give ``host``,
            a ready ``redis_client``, or set ``REDIS_URL``.

    Keyword Args:
        key_prefix: Namespace of the keys; the history provider's, to keep a session beside its messages.
        ttl: Seconds of inactivity after which a snapshot expires; every ``get`` and ``set`` refreshes it.
        redis_client: A ``redis.asyncio`` client to use (e.g. ``provider.redis_client``); never closed here.
        credential_provider, host, port, db, ssl, username, password, retry, socket_timeout,
            max_connections: Connection settings used when ``redis_client`` is not given.
        cluster: Connect to a Redis Cluster (any node's URL), as ``RedisChatMessageStore`` does.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        key_prefix: str = "chat_messages",
        ttl: float | timedelta | None = None,
        redis_client: RedisClient | None = None,
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
        self._key_prefix = validate_key_prefix(key_prefix)
        self._ttl = _validate_ttl(ttl)
        self._open_client(
            redis_client,
            redis_url=redis_url,
            host=host,
            port=port,
            db=db,
            ssl=ssl,
            username=username,
            password=password,
            credential_provider=credential_provider,
            retry=retry,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            max_connections=max_connections,
            cluster=cluster,
        )

    @property
    def ttl(self) -> float | None:
        """The sliding expiry in seconds, or None."""
        return self._ttl

    def key_for(self, session_id: str) -> str:
        """The Redis key of a session's snapshot."""
        return session_key(self._key_prefix, validate_thread_id(session_id, name="session_id"))

    async def get(self, session_id: str) -> AgentSession | None:
        """The stored session, or None when there is none (or it expired). Refreshes the TTL."""
        key = self.key_for(session_id)
        with self._redis_errors(key):
            if self._ttl is None:
                raw = await self._redis.get(key)
            else:
                raw = await self._redis.getex(key, px=self._ttl_ms())
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("type", "session") != "session":
                raise TypeError(f"expected a session object, got {_describe(data)}")
            if not isinstance(data.get("session_id"), str) or not isinstance(data.get("state", {}), dict):
                raise TypeError("'session_id' must be a str and 'state' an object")
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
        with self._redis_errors(key):
            await self._redis.set(key, snapshot, px=self._ttl_ms())

    async def delete(self, session_id: str) -> None:
        """Delete the stored session, if any."""
        key = self.key_for(session_id)
        with self._redis_errors(key):
            await self._redis.delete(key)

    def __repr__(self) -> str:
        where = self._settings.display_url if self._settings is not None else "<caller's redis_client>"
        return f"{type(self).__name__}(key_prefix={self._key_prefix!r}, ttl={self._ttl!r}, redis={where!r})"

    def _ttl_ms(self) -> int | None:
        return None if self._ttl is None else max(1, int(self._ttl * 1000))

    def _redis_errors(self, key: str) -> AbstractContextManager[None]:
        return translate_redis_errors(self._where(), key, "a session snapshot")


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        return f"type {data.get('type')!r}"
    return type(data).__name__
