"""``RedisChatMessageStore``: one Agent Framework conversation thread in Redis.

The adapter for the framework's ``ChatMessageStoreProtocol`` (the legacy ``AgentThread``;
it works with 1.x messages too). Storage is ``ThreadStorage``'s; this module adds what the
protocol needs: generated thread ids, the ``messages=`` seed, and the thread reference that
lets the stock legacy ``AgentThread`` resume a thread (see ``state.py``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Self, Unpack

from .._core.compaction import CompactionResult
from .._core.compat import framework_message_class
from .._core.connection import ClientOwner, RedisClient
from .._core.errors import StoreStateError, kept_cancellation
from .._core.fingerprints import batch_token
from .._core.keyspace import DEFAULT_KEY_PREFIX, validate_thread_id
from .._core.meta import ThreadInfo
from .._core.options import StoreOptionAttributes, StoreOptions, ThreadOptions, parse_options
from .._core.records import fork_thread
from .._core.telemetry import traced
from .._core.thread import EncodedBatch, ThreadStorage
from .state import (
    STATE_TYPE,
    STATE_VERSION,
    is_thread_reference,
    parse_reference_message,
    parse_state,
    reference_message_dict,
)

if TYPE_CHECKING:
    from .._core.compat import FrameworkMessage

__all__ = ["RedisChatMessageStore", "RedisStoreFactory"]

logger = logging.getLogger("agent_framework_redis_store")


def _new_thread_id() -> str:
    return f"thread_{uuid.uuid4()}"


def _check_index(index: object) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an int, got {type(index).__name__}")
    return index


def _check_last(last: object) -> int | None:
    if last is not None:
        if isinstance(last, bool) or not isinstance(last, int):
            raise TypeError(f"last must be an int or None, got {type(last).__name__}")
        if last < 1:
            raise ValueError(f"last must be at least 1, got {last}")
    return last


async def wait_for(tasks: set[asyncio.Task[None]]) -> None:
    """Wait for background tasks (they log their own failures and never raise)."""
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


def _check_batch(messages: object) -> None:
    if isinstance(messages, framework_message_class()) or not isinstance(messages, Sequence):
        raise TypeError(f"messages must be a sequence of messages, got {type(messages).__name__}")


class RedisChatMessageStore(StoreOptionAttributes, ClientOwner):
    """An Agent Framework chat message store that keeps one thread in a Redis list.

    Each ``add_messages`` call is one atomic round trip that appends, trims to
    ``max_messages`` and refreshes the sliding ``ttl``. ``serialize()`` returns only thread
    metadata (never messages, never credentials), and restoring it with the stock
    ``AgentThread.deserialize`` continues the same Redis thread.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Alternatively give ``host``,
            ``connection``, a ready ``redis_client``, or set ``REDIS_URL``.

    Keyword Args:
        thread_id: The thread to use; generated (``thread_<uuid4>``) when omitted.
        messages: Messages to seed the thread with, written only if the thread is empty.
        redis_client: A ``redis.asyncio`` client to use instead of creating one. The store
            never closes a client it did not create.
        **options: ``StoreOptions``: ``key_prefix`` (namespace of the keys), ``max_messages``
            (keep only the newest N), ``ttl`` (seconds of inactivity before the thread expires;
            appends refresh it once it has drifted by a minute, or a hundredth of ``ttl``),
            ``encryption`` (e.g. ``AESGCMEncryption``; never serialized, so pass it again when
            restoring), ``labels`` (str-to-str, recorded in the registry; None keeps the stored
            ones), ``registry`` (default True), and the
            ``ConnectionOptions`` (``host``, ``port``, ``db``, ``ssl``, ``username``,
            ``password``, ``credential_provider``, ``retry``, ``socket_timeout``,
            ``max_connections``, ``cluster``, or a ready ``connection``).
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        thread_id: str | None = None,
        messages: Sequence[FrameworkMessage] | None = None,
        redis_client: RedisClient | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        settings, connection = parse_options(type(self).__name__, options, StoreOptions)
        if thread_id is not None:
            validate_thread_id(thread_id)
        self._open_client(redis_client, redis_url, connection)
        self._start(thread_id, settings, messages)

    @classmethod
    def _on_client_of(
        cls,
        owner: ClientOwner,
        thread_id: str | None,
        settings: ThreadOptions,
        tasks: set[asyncio.Task[None]] | None = None,
    ) -> Self:
        """A store on ``owner``'s client (a factory's or provider's shared pool), options already validated."""
        store = cls.__new__(cls)
        store._borrow_client(owner)
        store._start(thread_id, settings, None, tasks)
        return store

    def _start(
        self,
        thread_id: str | None,
        settings: ThreadOptions,
        messages: object,
        tasks: set[asyncio.Task[None]] | None = None,
    ) -> None:
        # A store created for a given thread never lets a thread reference carried in a batch
        # re-point it, and a store that has read or written never does either (see add_messages).
        self._thread_id_given = thread_id is not None
        # Background compactions of this store's thread (shared with a factory's, which waits for all).
        self._tasks: set[asyncio.Task[None]] = tasks if tasks is not None else set()
        self._use_thread(_new_thread_id() if thread_id is None else validate_thread_id(thread_id), settings)
        self._used = False
        self._pending_seed: EncodedBatch | None = None
        if messages:
            if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
                raise TypeError("messages must be a sequence of framework messages")
            self._pending_seed = self._thread.encode(messages)

    def _use_thread(self, thread_id: str, settings: ThreadOptions) -> None:
        self._options = settings
        self._thread = ThreadStorage(self._redis, thread_id, settings, where=self._where(), tasks=self._tasks)

    # -- identity -------------------------------------------------------------------------

    @property
    def thread_id(self) -> str:
        """The id of the thread this store reads and writes."""
        return self._thread.thread_id

    @property
    def redis_key(self) -> str:
        """The Redis list that holds this thread's messages."""
        return self._thread.keys.messages

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(thread_id={self.thread_id!r}, key_prefix={self.key_prefix!r}, "
            f"max_messages={self.max_messages!r}, ttl={self.ttl!r}, redis={self._redis_repr()!r})"
        )

    # -- ChatMessageStoreProtocol ----------------------------------------------------------

    @traced("save")
    async def add_messages(
        self, messages: Sequence[FrameworkMessage], *, idempotency_key: str | None = None, **kwargs: Any
    ) -> None:
        """Append ``messages`` in one atomic round trip (append, trim, refresh TTL).

        A retried call with the same ``idempotency_key`` (one is generated per call, so
        redis-py's own retries are always covered) is applied at most once.
        """
        _check_batch(messages)
        if not self._used and messages and all(is_thread_reference(m) for m in messages):
            # The stock legacy AgentThread.deserialize(state, message_store=store) hands the
            # state's messages (here: only the thread reference) to a fresh store before
            # anything else. Anywhere else such a message is plain data: a message that merely
            # looks like a reference can never re-point a store that is already in use.
            for message in messages:
                self._adopt(parse_reference_message(message), explicit=False)
            return
        batch = self._thread.encode(messages)
        if batch or self._pending_seed:
            await self._append(batch, idempotency_key or batch_token(messages))

    @traced("save")
    async def add_new_messages(
        self, messages: Sequence[FrameworkMessage], *, idempotency_key: str | None = None
    ) -> int:
        """Append the messages that do not repeat the thread's newest ones; return how many were stored.

        One atomic round trip that never reads the history: the leading messages of the
        batch whose fingerprints (message id, else role and contents) match the thread's
        newest stored messages are skipped, so a turn saved twice or a transcript replayed
        in full adds only what is new. A call with an ``idempotency_key`` already applied
        stores nothing.
        """
        _check_batch(messages)
        if not messages:
            return 0
        thread = await self._ready()
        appended = await thread.append_new(
            thread.encode(messages, fingerprints=True), token=idempotency_key or uuid.uuid4().hex
        )
        thread.schedule_compaction()
        return appended

    @traced("load")
    async def list_messages(self, *, last: int | None = None) -> list[FrameworkMessage]:
        """What the model gets, oldest first: the summary (if any), then the newest messages after it.

        Without ``context_messages``, ``context_tokens`` or a summary that is every message.
        ``last=N`` keeps at most the newest N. The history is cut only where a tool-call group
        starts, and never holds a tool result without its call (``transcript()`` is the
        stored log, unchanged).
        """
        thread = await self._ready()
        return await thread.context(last=_check_last(last))

    @traced("transcript")
    async def transcript(self, *, last: int | None = None) -> list[FrameworkMessage]:
        """Every stored message, oldest first, summarized or not (``last=N``: the newest N).

        The log for a UI, an export or an audit; still bounded by ``max_messages``.
        """
        thread = await self._ready()
        return await thread.transcript(last=_check_last(last))

    async def summary(self) -> FrameworkMessage | None:
        """The thread's persisted summary message (``list_messages()`` starts with it), or None."""
        thread = await self._ready()
        return await thread.summary()

    async def compact(self, *, force: bool = False) -> CompactionResult:
        """Summarize the older messages now if the ``compaction=`` trigger is exceeded (``force``: regardless).

        Safe beside other instances: only one summarizes a thread at a time, and a summary
        is stored only if no other was stored meanwhile.
        """
        compaction = self._options.compaction
        if compaction is None:
            raise ValueError("compact() needs a store created with compaction=SummaryCompaction(...)")
        thread = await self._ready()
        return await thread.compact(compaction, force=force)

    async def serialize(self, **kwargs: Any) -> dict[str, Any]:
        """Thread metadata only: no message bodies and no connection settings or credentials."""
        reference = self._reference()
        return {"type": STATE_TYPE, **reference, "messages": [reference_message_dict(reference)]}

    @classmethod
    async def deserialize(
        cls,
        serialized_store_state: MutableMapping[str, Any],
        *,
        redis_url: str | None = None,
        redis_client: RedisClient | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store for the thread in ``serialized_store_state``; connection settings come from the caller."""
        if "thread_id" in kwargs:
            raise TypeError("deserialize() takes the thread_id from serialized_store_state, not as an argument")
        reference, messages = parse_state(serialized_store_state)
        store = cls(redis_url, redis_client=redis_client, **kwargs)
        if reference is not None:
            store._adopt(reference, explicit=True)
        if messages:
            await store.add_messages(messages)
        return store

    async def update_from_state(self, serialized_store_state: MutableMapping[str, Any], **kwargs: Any) -> None:
        """Point this store at the thread in ``serialized_store_state``.

        Plain messages in the state (from an in-memory store) are appended to the thread.
        """
        if not serialized_store_state:
            return
        reference, messages = parse_state(serialized_store_state)
        if reference is not None:
            self._adopt(reference, explicit=True)
        if messages:
            await self.add_messages(messages)

    # -- beyond the protocol ---------------------------------------------------------------

    async def count(self) -> int:
        """How many messages the thread holds."""
        thread = await self._ready()
        return await thread.count()

    async def rekey(self, *, encrypt_plaintext: bool = False) -> int:
        """Re-encrypt the thread's entries (and its session snapshot) with the current key; returns how many changed.

        Safe while other writers append (entries are swapped only if unchanged, in a Lua
        script), after which retired keys are no longer needed for this thread.
        ``encrypt_plaintext=True`` also encrypts entries written before encryption was on.
        """
        return await self._thread.rekey(encrypt_plaintext=encrypt_plaintext)

    @traced("fork")
    async def fork(self, new_thread_id: str | None = None, *, upto: int | None = None) -> str:
        """Copy this thread into a new one and return its id (generated when None).

        The copy holds the same messages (all, or the first ``upto``), labels, TTL and summary
        state (a summary is kept when the copied messages reach past what it covers), and is
        recorded in the registry with ``forked_from``; later writes to either never show in the
        other. One read and one atomic write, however long the thread; with encryption the
        copy is re-encrypted for its own thread. ``ThreadNotFoundError`` if this thread holds
        nothing; ``ValueError`` if ``new_thread_id`` exists.
        """
        thread = await self._ready()
        return await fork_thread(
            self._redis,
            self._options.keyspace,
            thread.thread_id,
            new_thread_id,
            upto=upto,
            encryption=self._options.encryption,
            where=self._where(),
            compression=self._options.compression,
            tokenizer=self._options.tokenizer,
        )

    async def clear(self) -> None:
        """Delete every key of the thread (messages, summary, session snapshot, bookkeeping) and its registry entry."""
        self._pending_seed = None
        await self._thread.clear()

    async def info(self) -> ThreadInfo:
        """Message count, created and last-active times, TTL left, labels and approximate bytes."""
        thread = await self._ready()
        return await thread.info()

    async def wait_for_compaction(self) -> None:
        """Wait until the background compaction started by this store's saves (if any) is done."""
        await wait_for(self._tasks)

    async def aclose(self) -> None:
        """Wait for this thread's background compaction, then close the pool if the store created it."""
        await wait_for(self._tasks)
        await super().aclose()

    async def ping(self) -> bool:
        """True if Redis answers, False otherwise. Never raises."""
        try:
            with kept_cancellation():
                return bool(await self._redis.ping())  # type: ignore[misc]
        except Exception as err:
            logger.debug("ping to %s failed: %s", self._where(), type(err).__name__)
            return False

    @classmethod
    def factory(
        cls,
        redis_url: str | None = None,
        *,
        thread_id: str | Callable[[], str] | None = None,
        redis_client: RedisClient | None = None,
        **options: Unpack[StoreOptions],
    ) -> RedisStoreFactory:
        """A zero-argument callable for ``chat_message_store_factory=``; all its stores share one pool."""
        return RedisStoreFactory(redis_url, thread_id=thread_id, redis_client=redis_client, **options)

    # -- kept for compatibility with agent-framework-redis's RedisChatMessageStore -----------------
    #
    # Code written for Microsoft's store runs unchanged. Each call is one atomic step against
    # concurrent appends and trims; the preferred call is named beside each.

    async def append(self, item: FrameworkMessage) -> None:
        """Append one message (kept for compatibility; prefer ``add_messages([item])``)."""
        await self.add_messages([item])

    async def extend(self, items: Sequence[FrameworkMessage]) -> None:
        """Append messages (kept for compatibility; prefer ``add_messages(items)``)."""
        await self.add_messages(items)

    async def getitem(self, index: int) -> FrameworkMessage:
        """The stored message at ``index`` (negative: from the newest); ``IndexError`` if there is none.

        Kept for compatibility; prefer ``transcript()`` (or ``list_messages()``, what the model gets).
        """
        thread = await self._ready()
        message = await thread.entry_at(_check_index(index))
        if message is None:
            raise IndexError("list index out of range")
        return message

    async def setitem(self, index: int, item: FrameworkMessage) -> None:
        """Replace the stored message at ``index`` (negative: from the newest); ``IndexError`` if there is none.

        Kept for compatibility. One script resolves ``index`` when it runs, so a concurrent
        append or trim never makes it overwrite another message than the one then at ``index``.
        """
        _check_batch([item])
        thread = await self._ready()
        if not await thread.replace_at(_check_index(index), item):
            raise IndexError("list index out of range")

    async def index(self, item: FrameworkMessage) -> int:
        """The position of the first stored message equal to ``item``; ``ValueError`` if there is none.

        Kept for compatibility; prefer searching ``transcript()``. Equal means the same
        ``to_dict()``, whichever generation wrote the entry.
        """
        thread = await self._ready()
        found = await thread.find(item)
        if found is None:
            raise ValueError(f"{type(item).__name__} not found in store")
        return found[0]

    async def remove(self, item: FrameworkMessage) -> None:
        """Remove the first stored message equal to ``item``; ``ValueError`` if there is none.

        Kept for compatibility. Removed in one script by its stored value, wherever concurrent
        appends and trims have moved it.
        """
        thread = await self._ready()
        if not await thread.remove(item):
            raise ValueError(f"{type(item).__name__} not found in store")

    def __bool__(self) -> bool:
        """Always True: a store is a store, however many messages it holds (``__len__`` is a coroutine)."""
        return True

    async def __len__(self) -> int:  # type: ignore[override]
        """How many messages are stored: ``await store.__len__()`` (kept for compatibility; prefer ``count()``).

        Like agent-framework-redis's, it is a coroutine, so ``len(store)`` cannot work.
        """
        return await self.count()

    # -- internals -------------------------------------------------------------------------

    async def _ready(self) -> ThreadStorage:
        """The thread, with the ``messages=`` seed written first if it is still pending."""
        self._used = True
        if self._pending_seed:
            await self._append(EncodedBatch([], [], [], []), "")
        return self._thread

    async def _append(self, batch: EncodedBatch, token: str) -> None:
        self._used = True
        seed, self._pending_seed = self._pending_seed, None
        try:
            await self._thread.append(batch, token=token, seed=seed)
        except BaseException:
            self._pending_seed = seed
            raise
        self._thread.schedule_compaction()

    def _reference(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "thread_id": self.thread_id,
            "key_prefix": self.key_prefix,
            "max_messages": self.max_messages,
            "ttl": self.ttl,
        }

    def _adopt(self, reference: Mapping[str, Any], *, explicit: bool) -> None:
        """Point the store at a serialized thread; what the caller configured explicitly wins.

        ``explicit`` is True for ``deserialize``/``update_from_state`` (the caller asks for the
        state's thread) and False for a reference that arrives through ``add_messages``.
        """
        thread_id, key_prefix = reference["thread_id"], reference["key_prefix"]
        if not explicit and self._thread_id_given and thread_id != self.thread_id:
            raise StoreStateError(
                f"the serialized state names thread {thread_id!r}, but this store was created for thread "
                f"{self.thread_id!r}; create the store without thread_id to resume the state's thread"
            )
        if key_prefix != self.key_prefix and self.key_prefix != DEFAULT_KEY_PREFIX:
            raise StoreStateError(
                f"the serialized state's key_prefix {key_prefix!r} differs from this store's {self.key_prefix!r}"
            )
        if thread_id != self.thread_id:
            logger.debug("store resumes thread %r (was %r)", thread_id, self.thread_id)
            self._pending_seed = None
        # The state only fills in what the caller left unset: an explicit ttl or max_messages stays.
        settings = replace(
            self._options,
            key_prefix=key_prefix,
            max_messages=self.max_messages if self.max_messages is not None else reference["max_messages"],
            ttl=self.ttl if self.ttl is not None else reference["ttl"],
        )
        self._use_thread(thread_id, settings)


class RedisStoreFactory(StoreOptionAttributes, ClientOwner):
    """Makes one ``RedisChatMessageStore`` per call, all sharing one connection pool.

    Pass an instance as ``chat_message_store_factory=``. ``thread_id`` may be a fixed id, a
    zero-argument callable returning a new id, or None for generated ids. The store options
    are validated once, here. ``aclose()`` closes the pool if the factory created it; the
    stores' own ``aclose()`` never does.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        thread_id: str | Callable[[], str] | None = None,
        redis_client: RedisClient | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        if thread_id is not None and not callable(thread_id):
            validate_thread_id(thread_id)
        self._thread_id = thread_id
        self._options, connection = parse_options(type(self).__name__, options, StoreOptions)
        self._open_client(redis_client, redis_url, connection)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def options(self) -> ThreadOptions:
        """The validated store options every store of this factory gets."""
        return self._options

    def __call__(self) -> RedisChatMessageStore:
        """A store for a new thread (or the fixed ``thread_id``), on the shared pool."""
        thread_id = self._thread_id() if callable(self._thread_id) else self._thread_id
        return self.store(thread_id)

    def store(self, thread_id: str | None = None) -> RedisChatMessageStore:
        """A store for ``thread_id`` (generated when None), on the shared pool."""
        return RedisChatMessageStore._on_client_of(self, thread_id, self._options, self._tasks)

    async def aclose(self) -> None:
        """Wait for its stores' background compactions, then close the pool if the factory created it."""
        await wait_for(self._tasks)
        await super().aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(options={self._options!r}, redis={self._redis_repr()!r})"
