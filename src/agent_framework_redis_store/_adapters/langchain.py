"""``RedisChatMessageHistory``: a LangChain chat message history on the store's threads.

A langchain-core ``BaseChatMessageHistory`` whose thread is an ordinary thread of this
package: every message is converted (``langchain_messages.py``) to a framework message and
stored by a ``RedisChatMessageStore``, so an Agent Framework agent continues a conversation a
LangChain chain began, and the reverse; the registry, TTL, ``max_messages``, encryption
and Redis Cluster apply as for any thread. Needs the ``[langchain]`` extra (langchain-core).

How the sync methods work: the store is asynchronous (redis.asyncio), and a redis.asyncio
connection belongs to the event loop that opened it. The async methods run in the
caller's event loop, on the async store. The sync methods (``messages``, ``add_messages``,
``clear``) run their coroutine on a private event loop in a daemon thread, started on
first use, with a connection pool of its own on that loop, and block until it is done. So
they work the same with or without an event loop running in the calling thread (they
block that thread, as any sync call does), and never start or nest a loop in it.
``close()`` / ``aclose()`` stop the thread and close both pools.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, Self, TypeVar, Unpack

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from redis import Redis as SyncRedis

from .._core.codec import message_from_dict
from .._core.connection import RedisClient, check_nothing_beside_client, settings_of_sync_client
from .._core.keyspace import validate_thread_id
from .._core.options import StoreOptionAttributes, StoreOptions
from .langchain_messages import from_langchain_dict, to_langchain_dicts
from .store import RedisChatMessageStore, RedisStoreFactory

__all__ = ["RedisChatMessageHistory", "RedisChatMessageHistoryFactory"]

T = TypeVar("T")

# How long close() waits for the loop thread to finish once its pool is closed.
_JOIN_TIMEOUT = 10.0


class _LoopThread:
    """An event loop running in a daemon thread: where the sync methods' coroutines run."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="RedisChatMessageHistory-sync", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
            # A call submitted just before close() may still be running: cancel it, so that
            # its caller gets CancelledError instead of waiting forever.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    @staticmethod
    def wait(future: Future[T]) -> T:
        """The result of a submitted call."""
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt while waiting: do not leave the call running
            raise

    def stop(self, closing: Coroutine[Any, Any, None], *, wait: bool) -> None:
        """Run ``closing`` (closing the pool) on the loop, then stop it; with ``wait``, until the thread has ended."""

        async def close_then_stop() -> None:
            try:
                await closing
            finally:
                asyncio.get_running_loop().stop()

        stopping = close_then_stop()
        try:
            future = self.submit(stopping)
        except RuntimeError:  # the loop is already closed (say, a finalizer at interpreter exit)
            stopping.close()
            closing.close()
            return
        if wait:
            try:
                future.result()
            finally:
                self._thread.join(_JOIN_TIMEOUT)


class _Connections:
    """What histories run on: a store factory for the async methods, and for the sync methods a
    loop thread with a store factory of its own, started on first sync use.

    Owned by one standalone history or by a ``RedisChatMessageHistoryFactory`` (shared by its
    histories). It holds no reference to its owner, so a finalizer can close it.
    """

    def __init__(
        self, owner: str, redis_url: str | None, redis_client: RedisClient | SyncRedis | None, options: dict[str, Any]
    ) -> None:
        unknown = sorted(set(options) - StoreOptions.__optional_keys__)
        if unknown:
            raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
        ttl = options.get("ttl")
        if isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl == 0:
            # langchain-redis applies ttl only when it is truthy, so its ttl=0 keeps messages forever;
            # silently mapping 0 to "never" here would surprise whoever meant "at once".
            raise ValueError(
                "ttl must be a positive number of seconds, got 0: for no expiry pass ttl=None "
                "(langchain-redis's ttl=0 meant no expiry)"
            )
        self.owner = owner
        if isinstance(redis_client, SyncRedis):
            # A sync redis.Redis cannot lend its sockets to redis.asyncio: its settings make pools of our own.
            check_nothing_beside_client(redis_url, options)
            if options.get("cluster"):
                raise TypeError("cluster=True needs a redis.asyncio.RedisCluster as redis_client (or pass redis_url)")
            options = {**options, "connection": settings_of_sync_client(redis_client)}
            options.pop("cluster", None)
            redis_url = redis_client = None
        self.async_stores = RedisStoreFactory(redis_url, redis_client=redis_client, **options)
        # A caller's redis.asyncio client belongs to the caller's loop: the sync side cannot use it.
        self._sync_config = None if redis_client is not None else (redis_url, options)
        self._owns_async_pool = redis_client is None
        self._sync: tuple[_LoopThread, RedisStoreFactory] | None = None
        self._lock = threading.Lock()
        self.closed = False
        self.async_used = False

    def run_sync(self, thread_id: str, call: Callable[[RedisChatMessageStore], Coroutine[Any, Any, T]]) -> T:
        """Run ``call(store of thread_id)`` on the loop thread (started if need be) and wait for it."""
        with self._lock:
            # Submitted under the lock, so a concurrent close() stops the loop only after it.
            self.check_open()
            if self._sync is None:
                if self._sync_config is None:
                    raise RuntimeError(
                        f"{self.owner} was given redis_client=, a redis.asyncio client that belongs to its own event "
                        "loop, so only the async methods (aget_messages, aadd_messages, aclear) can use it; for the "
                        "sync methods pass redis_url (or connection options) instead"
                    )
                redis_url, options = self._sync_config
                self._sync = (_LoopThread(), RedisStoreFactory(redis_url, **options))
            loop, stores = self._sync
            if loop.in_loop_thread:
                # Waiting here for the loop we are running on would never return.
                raise RuntimeError(f"the sync methods of {self.owner} cannot be called from its own loop thread")
            future = loop.submit(call(stores.store(thread_id)))
        return loop.wait(future)

    def check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"this {self.owner} is closed")

    def _take_sync_side(self) -> tuple[_LoopThread, RedisStoreFactory] | None:
        with self._lock:
            self.closed = True
            sync, self._sync = self._sync, None
            return sync

    def close(self) -> None:
        sync = self._take_sync_side()
        if sync is not None:
            loop, stores = sync
            loop.stop(stores.aclose(), wait=True)
        if self.async_used and self._owns_async_pool:
            raise RuntimeError(
                f"this {self.owner} used the async methods, whose connections belong to their event loop: "
                "close it with `await aclose()` (the sync side is closed)"
            )

    async def aclose(self) -> None:
        sync = self._take_sync_side()
        try:
            if sync is not None:
                loop, stores = sync
                await asyncio.to_thread(loop.stop, stores.aclose(), wait=True)
        finally:
            await self.async_stores.aclose()
            self.async_used = False  # nothing of the async side is left open

    def abandon(self) -> None:
        """Stop the loop thread of an owner that was never closed (a finalizer); never waits."""
        sync = self._take_sync_side()
        if sync is not None:
            loop, stores = sync
            loop.stop(stores.aclose(), wait=False)


class RedisChatMessageHistory(StoreOptionAttributes, BaseChatMessageHistory):
    """A LangChain chat message history kept as one of this package's Redis threads.

    ``RedisChatMessageHistory(thread_id, redis_url, **options)`` reads and writes the thread
    ``thread_id`` exactly as ``RedisChatMessageStore(redis_url, thread_id=thread_id, **options)``
    does: an Agent Framework agent with the same thread (legacy ``AgentThread``) or session
    id (1.x) continues the conversation, tool calls included. For
    ``RunnableWithMessageHistory``, which asks for a history on every call, pass
    ``RedisChatMessageHistory.factory(redis_url, **options)`` as ``get_session_history``.

    The async methods run in the caller's event loop. The sync methods run on a private
    loop thread with its own connection pool (started on first use), so they work with or
    without a running event loop in the calling thread. ``close()`` (or ``with``) after
    sync use, ``await aclose()`` (or ``async with``) after any use, closes both.

    ``len(history)`` is the number of stored messages (one round trip); a history is always
    truthy, even an empty one.

    Args:
        thread_id: The thread (LangChain's session id; ``session_id=`` is the same, as
            langchain-redis names it). Required: None raises ``ValueError``.
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Alternatively give ``host``,
            ``connection``, or set ``REDIS_URL``.

    Keyword Args:
        session_id: ``thread_id`` under langchain-redis's name.
        redis_client: A ``redis.asyncio`` client for the async methods, never closed here (it
            belongs to its event loop, so with it only the async methods work); or a sync
            ``redis.Redis``, whose host, port, database, credentials and timeouts the history's
            own pools use (every method works; the caller's client is neither used nor closed).
        **options: ``StoreOptions``, as ``RedisChatMessageStore`` takes them (``key_prefix``,
            ``max_messages``, ``ttl`` (positive seconds or None; 0 is refused), ``encryption``,
            ``labels``, ``registry``, connection options).
    """

    def __init__(
        self,
        thread_id: str | None = None,
        redis_url: str | None = None,
        *,
        session_id: str | None = None,
        redis_client: RedisClient | SyncRedis | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        thread_id = _required_session_id(thread_id, session_id)
        connections = _Connections(type(self).__name__, redis_url, redis_client, dict(options))
        self._start(connections, thread_id, owned=True)

    @classmethod
    def _of_factory(cls, factory: RedisChatMessageHistoryFactory, connections: _Connections, thread_id: str) -> Self:
        history = cls.__new__(cls)
        history._start(connections, thread_id, owned=False)
        # The factory's finalizer closes the connections: it must outlive every history it made.
        history._factory = factory
        return history

    def _start(self, connections: _Connections, thread_id: str, *, owned: bool) -> None:
        self._connections = connections
        self._store = connections.async_stores.store(thread_id)
        self._options = connections.async_stores.options
        self._owned = owned
        self._factory: RedisChatMessageHistoryFactory | None = None
        if owned:
            # A history dropped without close() (e.g. one made per call) must not leave its thread running.
            weakref.finalize(self, connections.abandon)

    @classmethod
    def factory(
        cls,
        redis_url: str | None = None,
        *,
        redis_client: RedisClient | SyncRedis | None = None,
        **options: Unpack[StoreOptions],
    ) -> RedisChatMessageHistoryFactory:
        """``get_session_history`` for ``RunnableWithMessageHistory``: histories on one pool and one loop thread."""
        return RedisChatMessageHistoryFactory(redis_url, redis_client=redis_client, **options)

    @property
    def thread_id(self) -> str:
        """The thread this history reads and writes."""
        return self._store.thread_id

    @property
    def session_id(self) -> str:
        """The thread id under LangChain's name."""
        return self._store.thread_id

    @property
    def id(self) -> str:
        """The thread id (langchain-redis's ``id``)."""
        return self._store.thread_id

    @property
    def redis_url(self) -> str | None:
        """The Redis URL in use with its username and password replaced by ``***``, or None (see the store's)."""
        return self._store.redis_url

    @property
    def store(self) -> RedisChatMessageStore:
        """The thread's ``RedisChatMessageStore`` (the async methods' connection): ``count``, ``info``, ..."""
        return self._store

    def __repr__(self) -> str:
        return f"{type(self).__name__}(thread_id={self.thread_id!r}, store={self._store!r})"

    # -- sync API: on the private loop thread -------------------------------------------------

    # langchain-core declares `messages` as an attribute and documents a property as a way to provide it.
    @property
    def messages(self) -> list[BaseMessage]:  # pyright: ignore[reportIncompatibleVariableOverride]
        """The thread's messages as LangChain messages, oldest first."""
        return _to_langchain(self._run(RedisChatMessageStore.list_messages))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in one atomic round trip (append, trim, refresh TTL)."""
        batch = _to_framework(messages)
        if batch:
            self._run(lambda store: store.add_messages(batch))

    def clear(self) -> None:
        """Delete every key of the thread and its registry entry."""
        self._run(RedisChatMessageStore.clear)

    def __len__(self) -> int:
        """The number of stored messages (``store.count()``), in one round trip."""
        return self._run(RedisChatMessageStore.count)

    def __bool__(self) -> bool:
        # Without this, __len__ would make an empty history falsy and every truth test a Redis call.
        return True

    def close(self) -> None:
        """Stop the loop thread and close the connections this history opened (after async use: ``aclose``)."""
        if self._owned:
            self._connections.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, call: Callable[[RedisChatMessageStore], Coroutine[Any, Any, T]]) -> T:
        return self._connections.run_sync(self.thread_id, call)

    # -- async API: in the caller's event loop ------------------------------------------------

    async def aget_messages(self) -> list[BaseMessage]:
        """The thread's messages as LangChain messages, oldest first."""
        return _to_langchain(await self._async_store().list_messages())

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in one atomic round trip (append, trim, refresh TTL)."""
        batch = _to_framework(messages)
        if batch:
            await self._async_store().add_messages(batch)

    async def aclear(self) -> None:
        """Delete every key of the thread and its registry entry."""
        await self._async_store().clear()

    async def aclose(self) -> None:
        """Stop the loop thread and close every connection this history opened."""
        if self._owned:
            await self._connections.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _async_store(self) -> RedisChatMessageStore:
        self._connections.check_open()
        self._connections.async_used = True
        return self._store


class RedisChatMessageHistoryFactory:
    """One ``RedisChatMessageHistory`` per session id, all on one pool (and one loop thread for sync calls).

    Pass it as ``RunnableWithMessageHistory(chain, get_session_history=factory)``, which asks
    for a history on every call; the histories hold nothing of their own to close.
    ``close()`` / ``aclose()`` close the factory's connections and loop thread.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis_client: RedisClient | SyncRedis | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        self._connections = _Connections(type(self).__name__, redis_url, redis_client, dict(options))
        weakref.finalize(self, self._connections.abandon)

    def __call__(self, session_id: str) -> RedisChatMessageHistory:
        """The history of thread ``session_id`` (required: None raises ``ValueError``)."""
        self._connections.check_open()
        return RedisChatMessageHistory._of_factory(self, self._connections, _required_session_id(session_id, None))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(stores={self._connections.async_stores!r})"

    def close(self) -> None:
        """Stop the loop thread and close the connections (after async use: ``aclose``)."""
        self._connections.close()

    async def aclose(self) -> None:
        """Stop the loop thread and close every connection the factory opened."""
        await self._connections.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _required_session_id(thread_id: object, session_id: object) -> str:
    """The one id given as ``thread_id`` or ``session_id``; None (or two different ids) raises ``ValueError``."""
    if thread_id is not None and session_id is not None and thread_id != session_id:
        raise ValueError("thread_id and session_id name the same thing: pass one of them")
    name, value = ("session_id", session_id) if session_id is not None else ("thread_id", thread_id)
    if value is None:
        # A generated id would be a new, unreachable conversation on every call (as langchain-redis, refuse).
        raise ValueError("session_id is required (got None): a LangChain history is the history of one session")
    return validate_thread_id(value, name=name)


def _to_framework(messages: Sequence[BaseMessage]) -> list[Any]:
    if isinstance(messages, BaseMessage) or not isinstance(messages, Sequence):
        raise TypeError(f"messages must be a sequence of LangChain messages, got {type(messages).__name__}")
    batch = []
    for i, message in enumerate(messages):
        if not isinstance(message, BaseMessage):
            raise TypeError(f"messages[{i}] must be a LangChain BaseMessage, got {type(message).__name__}")
        try:
            batch.append(message_from_dict(from_langchain_dict(message_to_dict(message))))
        except TypeError as err:
            raise TypeError(f"messages[{i}]: {err}") from err
        except ValueError as err:
            raise ValueError(f"messages[{i}]: {err}") from err
    return batch


def _to_langchain(messages: Sequence[Any]) -> list[BaseMessage]:
    return messages_from_dict([shown for message in messages for shown in to_langchain_dicts(message.to_dict())])
