"""How to reach Redis: one small typed settings object that builds a client.

Everything else in the package receives a ready client. Credentials given here are used
to connect and never appear in ``repr``, logs, errors or serialized state.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import re
import ssl
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypedDict
from urllib.parse import quote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .cluster import BoundedRedisCluster, RedisClient, is_cluster
from .errors import DatabaseOutOfRangeError, PlainServerError, cancel_requests, kept_cancellation
from .keyspace import check_encodable

__all__ = [
    "ClientOwner",
    "ConnectionOptions",
    "ConnectionSettings",
    "RedisClient",
    "check_nothing_beside_client",
    "default_retry",
    "eviction_policy_unread",
    "open_client",
    "redact_url",
    "settings_of_sync_client",
    "warn_if_evicting",
]

logger = logging.getLogger("agent_framework_redis_store")

_URL_SCHEMES = ("redis", "rediss", "unix")
_SECRET_QUERY_VALUE = re.compile(r"(?i)(^|&)([^=&]*(?:password|secret|token|username|user)[^=&]*)=[^&]*")


def default_retry() -> Retry:
    """Three retries with jittered exponential backoff (50 ms doubling, capped at 1 s)."""
    return Retry(
        ExponentialWithJitterBackoff(base=0.05, cap=1.0),
        retries=3,
        supported_errors=(RedisConnectionError, RedisTimeoutError, OSError),  # type: ignore[arg-type]
    )


def redact_url(url: str) -> str:
    """``url`` with any username and password replaced by ``***``."""
    scheme, separator, rest = url.partition("://")
    if separator and "@" in rest:
        # Everything before the last "@" may be credentials, however written: a password with an
        # unencoded "/", "?" or "#" ends urlsplit's netloc early and would stay. (An "@" further on
        # only makes this redact more than it must.) Host and port stay as written.
        url = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    # redis-py also reads query parameters (?password=..., ?ssl_password=...) as connection options.
    query = _SECRET_QUERY_VALUE.sub(r"\1\2=***", parts.query)
    if query == parts.query:
        return url
    # Swapped in place: urlunsplit would drop the empty host of unix:///path.
    return url.partition("?")[0] + "?" + query + ("#" + parts.fragment if parts.fragment else "")


def _check_url(url: str, name: str) -> None:
    """Raise naming ``name`` unless ``url`` is a Redis URL whose credentials can be told from its host.

    The errors quote none of the URL's user info, however malformed.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in _URL_SCHEMES:
        raise ValueError(f"{name} must start with redis://, rediss:// or unix://, got {redact_url(url)!r}")
    check_encodable(url, name)
    if "@" not in rest or (scheme.lower() == "unix" and rest.startswith("/")):
        return  # no user info (a socket path may hold an '@')
    userinfo = rest.rpartition("@")[0]
    if _AMBIGUOUS_USERINFO.search(userinfo):
        # Parsers end the host part at the first '/', '?' or '#': an unencoded one in a password
        # makes part of the password the host (looked up in DNS), the port or the database.
        raise ValueError(
            f"{name} cannot be parsed safely: its user info (the username and password before the '@') "
            "holds a character that must be percent-encoded ('/', '?', '#', '@', '[', ']', or a '%' that "
            "starts no %XX escape). Percent-encode the password and username, e.g. "
            "urllib.parse.quote(password, safe=''), or pass them as password= and username="
        )


# In the user info of a URL: a character that ends the host part early, a second '@', brackets
# (IPv6 hosts) or a '%' that starts no escape.
_AMBIGUOUS_USERINFO = re.compile(r"[/?#@\[\]]|%(?![0-9A-Fa-f]{2})")
_CREDENTIAL_QUERY = re.compile(r"(?i)(?:^|&)(?:username|password)=")


def _url_has_credentials(url: str) -> bool:
    """True if ``url`` (already through ``_check_url``) carries a username or password (user info, ``?password=``)."""
    rest = url.partition("://")[2]
    # _check_url refused user info holding '/', '?' or '#': the authority ends at the first of them.
    userinfo = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[0]
    return bool(userinfo) or bool(_CREDENTIAL_QUERY.search(rest.partition("?")[2].partition("#")[0]))


def _check_credential_sources(settings: ConnectionSettings, url: str | None, url_name: str) -> None:
    """Raise naming both arguments when ``credential_provider`` and other credentials are given.

    redis-py would refuse the pair only when the first connection opens; a URL without
    credentials beside a provider is fine (the URL says where, the provider who).
    """
    if settings.credential_provider is None:
        return
    for name in ("username", "password"):
        if getattr(settings, name) is not None:
            raise ValueError(
                f"{name} and credential_provider are mutually exclusive: the provider supplies the credentials"
            )
    if url is not None and _url_has_credentials(url):
        raise ValueError(
            f"{url_name} and credential_provider are mutually exclusive when {url_name} holds a username or "
            "password: the provider supplies the credentials (remove them from the URL, or drop credential_provider)"
        )


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect. Give ``redis_url`` or ``host``; else ``REDIS_URL`` is used."""

    redis_url: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int = 6379
    db: int = 0
    ssl: bool = False
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    credential_provider: CredentialProvider | None = field(default=None, repr=False)
    retry: Retry | None = field(default=None, repr=False)
    socket_timeout: float | None = 5.0
    socket_connect_timeout: float | None = 5.0
    max_connections: int = 32
    pool_timeout: float | None = 20.0
    cluster: bool = False

    def __post_init__(self) -> None:
        if self.redis_url is not None:
            if not isinstance(self.redis_url, str) or not self.redis_url:
                raise ValueError("redis_url must be a non-empty str such as 'redis://localhost:6379'")
            _check_url(self.redis_url, "redis_url")
        if self.host is not None and (not isinstance(self.host, str) or not self.host):
            raise ValueError("host must be a non-empty str")
        for name in ("host", "username", "password"):
            value = getattr(self, name)
            if isinstance(value, str):
                check_encodable(value, name)
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"port must be an int between 1 and 65535, got {self.port!r}")
        if isinstance(self.max_connections, bool) or not isinstance(self.max_connections, int):
            raise TypeError("max_connections must be an int")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")
        if self.redis_url is not None and self.host is not None:
            # The URL names its host: the other would be ignored.
            raise ValueError("redis_url and host are mutually exclusive: the URL names the host (pass one of them)")
        if self.cluster:
            _check_cluster_settings(self)
        _check_credential_sources(self, self.redis_url, "redis_url")

    @property
    def url(self) -> str:
        """The URL to connect to (may hold credentials: never log it, use ``display_url``)."""
        if self.redis_url is not None:
            return self.redis_url
        if self.host is not None:
            scheme = "rediss" if self.ssl else "redis"
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"{scheme}://{host}:{self.port}/{self.db}"
        env_url = os.environ.get("REDIS_URL")
        if env_url:
            _check_url(env_url, "REDIS_URL")
            _check_credential_sources(self, env_url, "REDIS_URL")
            return env_url
        if self.credential_provider is not None:
            raise ValueError(
                "No Redis to connect to: host is required with credential_provider (or pass redis_url=, or set "
                "REDIS_URL)"
            )
        raise ValueError("No Redis to connect to: pass redis_url=, host= or redis_client=, or set REDIS_URL")

    @property
    def display_url(self) -> str:
        """The URL with credentials redacted, safe for logs and errors."""
        try:
            return redact_url(self.url)
        except ValueError:
            return "<no redis url>"

    @property
    def given_url(self) -> str | None:
        """The URL given (``redis_url`` or ``REDIS_URL``) with credentials redacted; None when ``host`` was."""
        if self.redis_url is None and self.host is not None:
            return None
        try:
            return redact_url(self.url)
        except ValueError:
            return None

    def create_client(self) -> RedisClient:
        """A client that owns a bounded, blocking connection pool.

        The pool never opens more than ``max_connections`` connections: callers beyond
        that wait up to ``pool_timeout`` seconds for a free one instead of opening more.
        With ``cluster=True`` it is a ``RedisCluster`` (any node's URL will do) with at most
        ``max_connections`` commands in flight, so no node sees more command connections.
        """
        options: dict[str, Any] = {
            "max_connections": self.max_connections,
            ("pool_timeout" if self.cluster else "timeout"): self.pool_timeout,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "retry": self.retry if self.retry is not None else default_retry(),
            "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        }
        # A URL built from host/port carries no credentials; they are passed separately.
        if self.username is not None:
            options["username"] = self.username
        if self.password is not None:
            options["password"] = self.password
        if self.credential_provider is not None:
            options["credential_provider"] = self.credential_provider
        try:
            if self.cluster:
                return BoundedRedisCluster.from_url(self.url, **options)
            pool = BlockingConnectionPool.from_url(self.url, **options)
        except ValueError:
            pass
        else:
            pool.connection_class = _cancellable(pool.connection_class)
            return Redis.from_pool(pool)
        # Raised outside the handler, so that neither its cause nor its context holds redis-py's
        # parse error, which quotes parts of the URL (a password with a "/" becomes the "port").
        raise ValueError(f"redis_url {redact_url(self.url)!r} is not a valid Redis URL")


def settings_of_sync_client(client: object, name: str = "redis_client") -> ConnectionSettings:
    """Where and how a synchronous ``redis.Redis`` connects, as settings for pools of our own.

    A ``redis.asyncio`` pool cannot share a sync client's sockets. Host, port (or socket
    path), database, credentials, TLS and timeouts are carried over; what cannot be (custom
    TLS certificates, Sentinel, Cluster) raises naming ``name`` and saying to pass ``redis_url``.
    """
    import redis as sync_redis
    from redis.connection import SSLConnection, UnixDomainSocketConnection

    pool = getattr(client, "connection_pool", None)
    if (
        not isinstance(client, sync_redis.Redis)
        or not isinstance(pool, sync_redis.ConnectionPool)
        or type(pool) not in (sync_redis.ConnectionPool, sync_redis.BlockingConnectionPool)
    ):
        raise TypeError(
            f"{name} must be a redis.Redis on a plain connection pool (or a redis.asyncio client), got "
            f"{type(client).__name__}: for Sentinel or Cluster pass redis_url (or connection options) instead"
        )
    kwargs: dict[str, Any] = dict(pool.connection_kwargs)
    connection_class = pool.connection_class
    common: dict[str, Any] = {
        "db": int(kwargs.get("db") or 0),
        "username": kwargs.get("username"),
        "password": kwargs.get("password"),
        "credential_provider": kwargs.get("credential_provider"),
        "socket_timeout": kwargs.get("socket_timeout"),
        "socket_connect_timeout": kwargs.get("socket_connect_timeout", kwargs.get("socket_timeout")),
    }
    if issubclass(connection_class, UnixDomainSocketConnection):
        path = quote(str(kwargs["path"]), safe="/")
        return ConnectionSettings(redis_url=f"unix://{path}?db={common.pop('db')}", **common)
    ssl = issubclass(connection_class, SSLConnection)
    if ssl:
        defaults = inspect.signature(SSLConnection.__init__).parameters
        custom = sorted(key for key, value in kwargs.items() if key in defaults and value != defaults[key].default)
        if custom:
            raise ValueError(
                f"{name}'s TLS settings ({', '.join(custom)}) cannot be carried over to this object's own "
                "connections: pass redis_url (rediss://...) or connection options instead"
            )
    return ConnectionSettings(host=str(kwargs["host"]), port=int(kwargs.get("port") or 6379), ssl=ssl, **common)


class _CancellableSend:
    """Mixed into the connections of a pool we create: a send whose cancellation Python dropped raises it.

    On Python 3.11 ``asyncio.wait_for``, which redis-py sends through, returns normally when a
    cancel arrives as the send completes; the task would then wait for the reply, as long as
    the socket timeout when the server has stopped answering.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        requested = cancel_requests()
        await super().send_packed_command(command, check_health)  # type: ignore[misc]
        if requested >= 0 and cancel_requests() > requested:
            # The command went out and its reply will never be read: the connection is spent.
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise asyncio.CancelledError


# A TLS server answers a ClientHello within a round trip; a plain Redis reads it as the start of
# a command and says nothing (or, if it holds a newline, an error the handshake cannot parse).
# After this long without an answer, ask the port in plain text whether it is a Redis.
_TLS_PROBE_AFTER = 0.5
_PROBE_TIMEOUT = 2.0


async def _answers_plain_redis(host: str, port: int) -> bool:
    """Whether ``host:port`` answers ``PING`` in plain RESP (``+PONG``, or an error such as ``-NOAUTH``)."""
    writer = None
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"PING\r\n")
            await writer.drain()
            first = await reader.read(1)
    except (OSError, TimeoutError):
        return False  # a TLS server hangs up on plain text, or nothing answers: no verdict
    finally:
        if writer is not None:
            writer.close()
    return first in (b"+", b"-")


class _CheckedConnect:
    """Mixed into the connections of a pool we create: two set-up mistakes named for what they are.

    A ``rediss://`` URL for a plain Redis would wait out the connect timeout on every retry (about
    21 s with the defaults) and end as "unreachable"; here it fails within a second, naming TLS.
    A database the server does not have fails naming how many it has.
    """

    async def _connect(self) -> None:
        if not isinstance(self, SSLConnection):
            return await super()._connect()  # type: ignore[misc]
        handshake = asyncio.ensure_future(super()._connect())  # type: ignore[misc]
        probe: asyncio.Future[bool] | None = None
        try:
            await asyncio.wait({handshake}, timeout=_TLS_PROBE_AFTER)
            if handshake.done() and (
                # A certificate the client refused came from a TLS server: nothing to ask.
                handshake.exception() is None or isinstance(handshake.exception(), ssl.SSLCertVerificationError)
            ):
                return handshake.result()
            probe = asyncio.ensure_future(_answers_plain_redis(self.host, self.port))
            await asyncio.wait({handshake, probe}, return_when=asyncio.FIRST_COMPLETED)
            if not probe.done() and handshake.exception() is None:
                return handshake.result()
            if await probe:
                raise PlainServerError(
                    f"the server at {self.host}:{self.port} did not answer the TLS handshake (is it serving TLS?): "
                    "it answers plain Redis there; use a redis:// URL for it, or the port it serves TLS on"
                )
            return await handshake
        finally:
            for task in (handshake, probe):
                if task is not None and not task.done():
                    # Not awaited: that would swallow a cancellation of our own that arrives meanwhile.
                    task.cancel()
                    task.add_done_callback(_retrieve)

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        try:
            await super().connect_check_health(check_health, retry_socket_connect)  # type: ignore[misc]
        except RedisConnectionError as err:
            # redis-py wraps whatever _connect raises in a ConnectionError, which the retry policy
            # retries: a plain server stays plain, so its error goes out as itself, at once.
            if isinstance(err.__cause__, PlainServerError):
                raise err.__cause__ from None
            raise

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        try:
            await super().on_connect_check_health(check_health)  # type: ignore[misc]
        except ResponseError as err:
            if "DB index is out of range" not in str(err):
                raise
            raise DatabaseOutOfRangeError(self.db, await _database_count(self)) from None  # type: ignore[attr-defined]

    host: str
    port: int


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _database_count(connection: Any) -> int | None:
    """``CONFIG GET databases`` on the connection whose SELECT failed; None when it may not be read."""
    try:
        await connection.send_command("CONFIG", "GET", "databases", check_health=False)
        reply = await connection.read_response()
    except (RedisError, OSError, TimeoutError):
        return None
    values = list(reply.values()) if isinstance(reply, dict) else list(reply or [])[1:2]
    try:
        return int(values[0])
    except (IndexError, TypeError, ValueError):
        return None


@functools.cache
def _cancellable(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    bases = (_CancellableSend, _CheckedConnect, connection_class)
    return type(connection_class.__name__, bases, {"__module__": __name__})


def _check_cluster_settings(settings: ConnectionSettings) -> None:
    # Only the URL's shape is checked here; the cluster itself is discovered on first use.
    url = settings.redis_url or os.environ.get("REDIS_URL") or ""
    if url.lower().startswith("unix://"):
        raise ValueError("cluster=True needs a redis:// or rediss:// node URL; Redis Cluster has no unix sockets")
    path = urlsplit(url).path.strip("/") if url else ""
    if (path and path != "0") or settings.db != 0:
        raise ValueError(f"db must be 0 with cluster=True (Redis Cluster has one database), got {path or settings.db}")


class ConnectionOptions(TypedDict, total=False):
    """How to reach Redis when no ``redis_client`` is given: ``ConnectionSettings``' fields, all optional.

    ``connection`` passes a ready ``ConnectionSettings`` instead of the separate fields.
    """

    connection: ConnectionSettings
    host: str | None
    port: int
    db: int
    ssl: bool
    username: str | None
    password: str | None
    credential_provider: CredentialProvider | None
    retry: Retry | None
    socket_timeout: float | None
    socket_connect_timeout: float | None
    max_connections: int
    pool_timeout: float | None
    cluster: bool


CONNECTION_OPTIONS = ConnectionOptions.__optional_keys__


class ClientOwner:
    """Holds a Redis client and closes it only if it created it: a caller's client stays the caller's."""

    _settings: ConnectionSettings | None
    _redis: RedisClient

    def _open_client(self, redis_client: RedisClient | None, redis_url: str | None, options: Mapping[str, Any]) -> None:
        self._settings, self._redis = open_client(redis_client, redis_url, options)

    @property
    def redis_client(self) -> RedisClient:
        """The ``redis.asyncio`` client in use."""
        return self._redis

    @property
    def redis_url(self) -> str | None:
        """The Redis URL connected to (``redis_url``, ``connection=`` or ``REDIS_URL``), its username and
        password replaced by ``***``; None when connected by ``host=`` or through a caller's ``redis_client``."""
        if "_redis_url_text" not in self.__dict__:
            self.__dict__["_redis_url_text"] = self._settings.given_url if self._settings is not None else None
        return self.__dict__["_redis_url_text"]

    def _where(self) -> str:
        # Cached: redacting the URL is not free, and every command's error handling names it.
        where = self.__dict__.get("_where_text")
        if where is None:
            where = self._settings.display_url if self._settings is not None else "the caller's redis_client"
            self.__dict__["_where_text"] = where
        return where

    def _borrow_client(self, owner: ClientOwner) -> None:
        """Use ``owner``'s client (never closed here), naming its server in errors."""
        self._settings = None
        self._redis = owner._redis
        self.__dict__["_where_text"] = owner._where()
        self.__dict__["_redis_url_text"] = owner.redis_url

    def _redis_repr(self) -> str:
        # The redacted URL, or the caller's client: never credentials.
        return self._where()

    async def aclose(self) -> None:
        """Close the connection pool if this object created it; a caller's ``redis_client`` stays open."""
        if self._settings is not None:
            await self._redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def check_nothing_beside_client(redis_url: str | None, options: Mapping[str, Any]) -> None:
    """Raise naming them if ``redis_url`` or connection options come with a ``redis_client``.

    A ready client is connected and configured already: anything else that says where or how
    to connect would be ignored. (``cluster`` is not ignored: it is checked against the client.)
    """
    given = ["redis_url"] if redis_url is not None else []
    given += sorted(k for k, v in options.items() if k in CONNECTION_OPTIONS and k != "cluster" and v is not None)
    if given:
        raise ValueError(
            f"redis_client and {' and '.join(given)} are mutually exclusive: the client is already "
            "connected and configured (pass one or the other)"
        )


def open_client(
    redis_client: RedisClient | None, redis_url: str | None, options: Mapping[str, Any]
) -> tuple[ConnectionSettings | None, RedisClient]:
    """The caller's client with no settings (not ours to close), or a new client built from the options.

    ``options`` holds ``ConnectionOptions`` fields (already checked for unknown names).
    """
    given = dict(options)
    settings = given.pop("connection", None)
    if settings is not None and not isinstance(settings, ConnectionSettings):
        raise TypeError(f"connection must be a ConnectionSettings, got {type(settings).__name__}")
    cluster = bool(given.get("cluster", settings.cluster if settings is not None else False))
    if redis_client is not None:
        check_nothing_beside_client(redis_url, options)
        if cluster and not isinstance(redis_client, RedisCluster):
            raise TypeError(
                f"cluster=True needs a redis.asyncio.RedisCluster as redis_client, got {type(redis_client).__name__}"
            )
        return None, redis_client
    if settings is not None:
        if redis_url is not None or given:
            raise ValueError("Pass either connection= or redis_url and separate connection options, not both")
    else:
        # A connect timeout not given follows the socket timeout (one knob for most users).
        given.setdefault("socket_connect_timeout", given.get("socket_timeout", 5.0))
        if given.get("credential_provider") is not None and given.get("host") is not None and redis_url is None:
            # As agent-framework-redis does: a credential provider with a host is Azure Cache for
            # Redis (Entra ID), which listens with TLS on 6380.
            given.setdefault("port", 6380)
            given.setdefault("ssl", True)
        settings = ConnectionSettings(redis_url=redis_url, **given)
    return settings, settings.create_client()


# -- the server's eviction policy ---------------------------------------------------------------

_policy_read: weakref.WeakSet[Any] = weakref.WeakSet()  # the clients whose servers were asked


def eviction_policy_unread(client: RedisClient) -> bool:
    """True until ``warn_if_evicting`` has asked ``client``'s server (cheap: call it before awaiting that)."""
    return client not in _policy_read


async def warn_if_evicting(client: RedisClient, where: str) -> None:
    """Once per client: log a warning if the server may evict single keys of a thread.

    With ``maxmemory-policy allkeys-*`` Redis evicts any key under memory pressure, one at a
    time: a thread can lose its metadata, index or messages piecemeal. Read with ``INFO memory``
    (on Redis Cluster, from every primary); a user denied INFO is not asked again, and nothing
    here fails the caller's call (cancellation aside).
    """
    if client in _policy_read:
        return
    _policy_read.add(client)
    try:
        with kept_cancellation():
            if is_cluster(client):
                info = await client.info("memory", target_nodes=RedisCluster.PRIMARIES)  # type: ignore[call-arg]
            else:
                info = await client.info("memory")
    except Exception as err:
        logger.debug("could not read the maxmemory-policy of Redis at %s: %s", where, type(err).__name__)
        return
    nodes = [info] if "maxmemory_policy" in info else [v for v in info.values() if isinstance(v, dict)]
    evicting = sorted({str(n.get("maxmemory_policy")) for n in nodes} - {"None"})
    evicting = [policy for policy in evicting if policy.startswith("allkeys-")]
    if evicting:
        logger.warning(
            "Redis at %s has maxmemory-policy %s: under memory pressure it evicts single keys, so a thread "
            "can lose its metadata, index or messages piecemeal. Set maxmemory-policy noeviction (a full "
            "Redis then refuses writes with RedisOutOfMemoryError and loses nothing), or volatile-* if the "
            "store sets no ttl= (keys without a TTL are never evicted).",
            where,
            " and ".join(evicting),
        )
