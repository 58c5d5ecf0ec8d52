"""``RedisChatMessageStore``: one Agent Framework conversation thread in Redis."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self

from redis.asyncio.retry import Retry
from redis.commands.core import AsyncScript
from redis.credentials import CredentialProvider
from redis.exceptions import NoScriptError

from ._compat import framework_message_class
from .cluster import is_cluster, run_beside_index
from .codec import decode_message, encode_message, message_from_dict
from .connections import ClientOwner, RedisClient
from .encryption import MessageEncryption, decrypt_entry, rekey_thread, validate_encryption
from .errors import CorruptMessageError, StoreStateError, translate_redis_errors
from .fingerprints import encode_with_fingerprint
from .keys import (
    batches_key,
    fingerprints_key,
    meta_key,
    registry_key,
    thread_key,
    validate_key_prefix,
    validate_thread_id,
)
from .lua import APPEND_AND_TRIM, APPEND_NEW_AND_TRIM
from .registry import ThreadInfo, labels_json, read_thread_info, validate_labels

if TYPE_CHECKING:
    from ._compat import FrameworkMessage

__all__ = ["STATE_TYPE", "RedisChatMessageStore", "RedisStoreFactory"]

logger = logging.getLogger("agent_framework_redis_store")

STATE_TYPE = "redis_chat_message_store_state"
DEFAULT_KEY_PREFIX = "chat_messages"
# The legacy AgentThread re-parses a store's state as ChatMessageStoreState, which keeps only
# its `messages`. The thread reference therefore also travels as a message that carries no
# text, only this additional property; add_messages() recognises it and adopts the thread
# instead of storing it.
THREAD_REFERENCE_PROPERTY = "agent_framework_redis_store.thread"
_STATE_VERSION = 1
_FOREIGN_STATE_TYPES = {STATE_TYPE, "chat_message_store_state"}


def _validate_max_messages(value: object, name: str = "max_messages") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 (or None for no limit), got {value}")
    return value


def _validate_ttl(value: object, name: str = "ttl") -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be seconds (int, float or timedelta) or None, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds (or None for no expiry), got {value}")
    return float(value)


def _new_thread_id() -> str:
    return f"thread_{uuid.uuid4()}"


class RedisChatMessageStore(ClientOwner):
    """An Agent Framework chat message store that keeps one thread in a Redis list.

    Each ``add_messages`` call is one atomic round trip that appends, trims to
    ``max_messages`` and refreshes the sliding ``ttl``. ``serialize()`` returns only thread
    metadata (never messages, never credentials), and restoring it with the stock
    ``AgentThread.deserialize`` continues the same Redis thread.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Alternatively give ``host``,
            a ready ``redis_client``, or set ``REDIS_URL``.

    Keyword Args:
        thread_id: The thread to use; generated (``thread_<uuid4>``) when omitted.
        key_prefix: Namespace of the Redis keys (see the README's key layout).
        max_messages: Keep only the newest N messages (None: keep all).
        ttl: Seconds of inactivity after which the thread expires; every write refreshes it.
        messages: Messages to seed the thread with, written only if the thread is empty.
        encryption: Encrypt message bodies at rest (e.g. ``AESGCMEncryption``); never serialized,
            so pass it again when restoring.
        labels: str-to-str labels recorded in the thread registry (e.g. ``{"user": "alice"}``);
            None leaves the labels already stored untouched.
        registry: Record the thread in the key prefix's registry on every write (default True).
        redis_client: A ``redis.asyncio`` client to use instead of creating one. The store
            never closes a client it did not create.
        credential_provider, host, port, db, ssl, username, password: Connection settings
            used when ``redis_client`` is not given.
        retry: redis-py ``Retry`` policy for connection errors (default: 3 retries, jittered backoff).
        socket_timeout, max_connections: Connection pool settings of a store-owned client.
        cluster: Connect to a Redis Cluster (``redis_url`` names any node; the others are
            discovered), or require ``redis_client`` to be a ``redis.asyncio.RedisCluster``.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        thread_id: str | None = None,
        key_prefix: str = "chat_messages",
        max_messages: int | None = None,
        ttl: float | timedelta | None = None,
        messages: Sequence[FrameworkMessage] | None = None,
        encryption: MessageEncryption | None = None,
        labels: Mapping[str, str] | None = None,
        registry: bool = True,
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
        self._thread_id = _new_thread_id() if thread_id is None else validate_thread_id(thread_id)
        # A store created for a given thread never lets a thread reference carried in a batch
        # re-point it, and a store that has read or written never does either (see add_messages).
        self._thread_id_given = thread_id is not None
        self._used = False
        self._labels = validate_labels(labels)
        self._labels_json = labels_json(self._labels)
        self._registry = bool(registry)
        self._key_prefix = validate_key_prefix(key_prefix)
        self._set_keys()
        self._max_messages = _validate_max_messages(max_messages)
        self._ttl = _validate_ttl(ttl)
        self._encryption = validate_encryption(encryption)
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
        self._cluster = is_cluster(self._redis)
        self._append_script = self._redis.register_script(APPEND_AND_TRIM)
        self._append_new_script: AsyncScript | None = None
        self._pending_seed: list[str] = []
        if messages:
            if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
                raise TypeError("messages must be a sequence of framework messages")
            self._pending_seed = [encode_message(m) for m in messages]

    # -- identity -------------------------------------------------------------------------

    @property
    def thread_id(self) -> str:
        """The id of the thread this store reads and writes."""
        return self._thread_id

    @property
    def key_prefix(self) -> str:
        """The namespace of this store's Redis keys."""
        return self._key_prefix

    @property
    def max_messages(self) -> int | None:
        """The newest N messages kept, or None for all."""
        return self._max_messages

    @property
    def ttl(self) -> float | None:
        """The sliding expiry in seconds, or None."""
        return self._ttl

    @property
    def labels(self) -> dict[str, str] | None:
        """The labels this store records in the registry, or None."""
        return None if self._labels is None else dict(self._labels)

    @property
    def redis_key(self) -> str:
        """The Redis list that holds this thread's messages."""
        return self._keys[0]

    def __repr__(self) -> str:
        where = self._settings.display_url if self._settings is not None else "<caller's redis_client>"
        return (
            f"{type(self).__name__}(thread_id={self._thread_id!r}, key_prefix={self._key_prefix!r}, "
            f"max_messages={self._max_messages!r}, ttl={self._ttl!r}, redis={where!r})"
        )

    # -- ChatMessageStoreProtocol ----------------------------------------------------------

    async def add_messages(
        self, messages: Sequence[FrameworkMessage], *, idempotency_key: str | None = None, **kwargs: Any
    ) -> None:
        """Append ``messages`` in one atomic round trip (append, trim, refresh TTL).

        A retried call with the same ``idempotency_key`` (one is generated per call, so
        redis-py's own retries are always covered) is applied at most once.
        """
        if isinstance(messages, framework_message_class()) or not isinstance(messages, Sequence):
            raise TypeError(f"messages must be a sequence of messages, got {type(messages).__name__}")
        if not self._used and messages and all(_is_thread_reference(m) for m in messages):
            # The stock legacy AgentThread.deserialize(state, message_store=store) hands the
            # state's messages (here: only the thread reference) to a fresh store before
            # anything else. Anywhere else such a message is plain data: a message that merely
            # looks like a reference can never re-point a store that is already in use.
            for message in messages:
                self._adopt(_parse_reference_message(message), explicit=False)
            return
        payloads = [encode_message(message) for message in messages]
        if not payloads and not self._pending_seed:
            return
        await self._append(payloads, idempotency_key or _batch_token(messages))

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
        if isinstance(messages, framework_message_class()) or not isinstance(messages, Sequence):
            raise TypeError(f"messages must be a sequence of messages, got {type(messages).__name__}")
        if not messages:
            return 0
        self._used = True
        if self._pending_seed:
            await self._append([], "")
        # With encryption the fingerprints are keyed: they must reveal nothing about the bodies.
        digest_key = self._encryption.digest_key if self._encryption is not None else b""
        payloads, fingerprints = zip(*(encode_with_fingerprint(m, key=digest_key) for m in messages), strict=True)
        if self._append_new_script is None:
            self._append_new_script = self._redis.register_script(APPEND_NEW_AND_TRIM)
        keys = [*self._keys, self._fingerprints_key]
        token = idempotency_key or uuid.uuid4().hex
        args: list[Any] = [self._max_messages or 0, self._ttl_ms(), token, time.time_ns() // 1000, len(messages)]
        if self._registry:
            keys += self._registry_keys[2:]
            args += [self._labels_json, self._thread_id]
        args += [*fingerprints, *self._sealed(payloads)]
        return int(await self._run(self._append_new_script, keys, args))

    async def list_messages(self, *, last: int | None = None) -> list[FrameworkMessage]:
        """The thread's messages, oldest first; with ``last=N`` only the newest N."""
        if last is not None:
            if isinstance(last, bool) or not isinstance(last, int):
                raise TypeError(f"last must be an int or None, got {type(last).__name__}")
            if last < 1:
                raise ValueError(f"last must be at least 1, got {last}")
        self._used = True
        if self._pending_seed:
            await self._append([], "")
        key = self.redis_key
        with self._redis_errors():
            raw = await self._redis.lrange(key, 0, -1) if last is None else await self._redis.lrange(key, -last, -1)
        messages: list[FrameworkMessage] = []
        for position, payload in enumerate(raw):
            index = position if last is None else position - len(raw)
            payload = decrypt_entry(self._encryption, payload, key=key, index=index)
            try:
                messages.append(decode_message(payload))
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
                raise CorruptMessageError(key, index, f"{type(err).__name__}: {err}") from err
        return messages

    async def serialize(self, **kwargs: Any) -> dict[str, Any]:
        """Thread metadata only: no message bodies and no connection settings or credentials."""
        reference = self._reference()
        return {"type": STATE_TYPE, **reference, "messages": [_reference_message_dict(reference)]}

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
        reference, messages = _parse_state(serialized_store_state)
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
        reference, messages = _parse_state(serialized_store_state)
        if reference is not None:
            self._adopt(reference, explicit=True)
        if messages:
            await self.add_messages(messages)

    # -- beyond the protocol ---------------------------------------------------------------

    async def count(self) -> int:
        """How many messages the thread holds."""
        if self._pending_seed:
            await self._append([], "")
        with self._redis_errors():
            return int(await self._redis.llen(self.redis_key))

    async def rekey(self, *, encrypt_plaintext: bool = False) -> int:
        """Re-encrypt the thread's entries with the current key; returns how many changed.

        Safe while other writers append (entries are swapped only if unchanged, in a Lua
        script), after which retired keys are no longer needed for this thread.
        ``encrypt_plaintext=True`` also encrypts entries written before encryption was on.
        """
        if self._encryption is None:
            raise ValueError("rekey needs a store created with encryption=")
        with self._redis_errors():
            return await rekey_thread(
                self._redis, self.redis_key, self._encryption, encrypt_plaintext=encrypt_plaintext
            )

    async def clear(self) -> None:
        """Delete the thread's messages, batch tokens, fingerprints and registry entry from Redis."""
        self._pending_seed = []
        messages, batches, meta, registry = self._registry_keys
        if self._cluster:
            # The registry is in another slot, so no MULTI/EXEC spans both: the entry goes
            # first, and an append that recreates the thread meanwhile enters it again.
            with self._redis_errors():
                await self._redis.zrem(registry, self._thread_id)
                await self._redis.delete(messages, batches, meta, self._fingerprints_key)
            return
        # One MULTI/EXEC: no append can slip between the DEL and the ZREM.
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(messages, batches, meta, self._fingerprints_key)
        pipe.zrem(registry, self._thread_id)
        with self._redis_errors():
            await pipe.execute()

    async def info(self) -> ThreadInfo:
        """Message count, created and last-active times, TTL left, labels and approximate bytes."""
        if self._pending_seed:
            await self._append([], "")
        with self._redis_errors():
            return await read_thread_info(self._redis, self._key_prefix, self._thread_id)

    async def ping(self) -> bool:
        """True if Redis answers, False otherwise. Never raises."""
        try:
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
        **store_options: Any,
    ) -> RedisStoreFactory:
        """A zero-argument callable for ``chat_message_store_factory=``; all its stores share one pool."""
        return RedisStoreFactory(redis_url, thread_id=thread_id, redis_client=redis_client, **store_options)

    # -- internals -------------------------------------------------------------------------

    def _set_keys(self) -> None:
        # Computed once per thread: percent-encoding the id is not free on the hot path.
        self._keys = [thread_key(self._key_prefix, self._thread_id), batches_key(self._key_prefix, self._thread_id)]
        # With the registry on, the script also updates the meta hash and the prefix's registry.
        self._registry_keys = [*self._keys, meta_key(self._key_prefix, self._thread_id), registry_key(self._key_prefix)]

    async def _append(self, payloads: list[str], token: str) -> None:
        self._used = True
        seed, self._pending_seed = self._pending_seed, []
        ttl_ms = self._ttl_ms()
        # The token's score only orders tokens for eviction; client clocks need not agree.
        args: list[Any] = [self._max_messages or 0, ttl_ms, token, time.time_ns() // 1000, len(seed)]
        keys = self._keys
        if self._registry:
            # Standalone Redis: the registry sorted set is updated inside the same script.
            keys = self._registry_keys
            args += [self._labels_json, self._thread_id]
        args += self._sealed([*seed, *payloads])
        try:
            await self._run(self._append_script, keys, args)
        except BaseException:
            self._pending_seed = seed
            raise

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run one of the thread's scripts: the hot path of every write, so kept lean."""
        try:
            if self._registry and self._cluster:
                # The registry key is last in keys; args[3] is the writer's clock in microseconds.
                return await run_beside_index(
                    self._redis, script, keys, args, member=self._thread_id, score_ms=args[3] // 1000
                )
            try:
                return await self._redis.evalsha(script.sha, len(keys), *keys, *args)  # type: ignore[misc]
            except NoScriptError:
                return await script(keys=keys, args=args)  # loads the script, then runs it
        except Exception:
            # Translating only on failure keeps the context manager off the success path.
            with self._redis_errors():
                raise

    def _sealed(self, payloads: Sequence[str]) -> Sequence[str]:
        if self._encryption is None:
            return payloads
        # Bound to this thread's key, so an entry copied to another thread does not decrypt.
        return [self._encryption.encrypt(payload, context=self.redis_key) for payload in payloads]

    def _ttl_ms(self) -> int:
        return 0 if self._ttl is None else max(1, int(self._ttl * 1000))

    @property
    def _fingerprints_key(self) -> str:
        return fingerprints_key(self._key_prefix, self._thread_id)

    def _reference(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "thread_id": self._thread_id,
            "key_prefix": self._key_prefix,
            "max_messages": self._max_messages,
            "ttl": self._ttl,
        }

    def _adopt(self, reference: Mapping[str, Any], *, explicit: bool) -> None:
        """Point the store at a serialized thread; what the caller configured explicitly wins.

        ``explicit`` is True for ``deserialize``/``update_from_state`` (the caller asks for the
        state's thread) and False for a reference that arrives through ``add_messages``.
        """
        thread_id, key_prefix = reference["thread_id"], reference["key_prefix"]
        if not explicit and self._thread_id_given and thread_id != self._thread_id:
            raise StoreStateError(
                f"the serialized state names thread {thread_id!r}, but this store was created for thread "
                f"{self._thread_id!r}; create the store without thread_id to resume the state's thread"
            )
        if key_prefix != self._key_prefix and self._key_prefix != DEFAULT_KEY_PREFIX:
            raise StoreStateError(
                f"the serialized state's key_prefix {key_prefix!r} differs from this store's {self._key_prefix!r}"
            )
        if thread_id != self._thread_id:
            logger.debug("store resumes thread %r (was %r)", thread_id, self._thread_id)
            self._pending_seed = []
        self._thread_id, self._key_prefix = thread_id, key_prefix
        self._set_keys()
        # The state only fills in what the caller left unset: an explicit ttl or max_messages stays.
        if self._max_messages is None:
            self._max_messages = reference["max_messages"]
        if self._ttl is None:
            self._ttl = reference["ttl"]

    def _redis_errors(self) -> AbstractContextManager[None]:
        return translate_redis_errors(self._where(), self.redis_key, "a message list")


class RedisStoreFactory(ClientOwner):
    """Makes one ``RedisChatMessageStore`` per call, all sharing one connection pool.

    Pass an instance as ``chat_message_store_factory=``. ``thread_id`` may be a fixed id, a
    zero-argument callable returning a new id, or None for generated ids. ``aclose()``
    closes the pool if the factory created it; the stores' own ``aclose()`` never does.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        thread_id: str | Callable[[], str] | None = None,
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
        **store_options: Any,
    ) -> None:
        if thread_id is not None and not callable(thread_id):
            validate_thread_id(thread_id)
        self._thread_id = thread_id
        # Validate the store options once, here, rather than on the first thread.
        unknown = set(store_options) - {"key_prefix", "max_messages", "ttl", "labels", "registry", "encryption"}
        if unknown:
            raise TypeError(f"Unknown store option(s): {', '.join(sorted(unknown))}")
        validate_key_prefix(store_options.get("key_prefix", DEFAULT_KEY_PREFIX))
        _validate_max_messages(store_options.get("max_messages"))
        _validate_ttl(store_options.get("ttl"))
        validate_encryption(store_options.get("encryption"))
        validate_labels(store_options.get("labels"))
        self._store_options = store_options
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

    def __call__(self) -> RedisChatMessageStore:
        """A store for a new thread (or the fixed ``thread_id``), on the shared pool."""
        thread_id = self._thread_id() if callable(self._thread_id) else self._thread_id
        return self.store(thread_id)

    def store(self, thread_id: str | None = None) -> RedisChatMessageStore:
        """A store for ``thread_id`` (generated when None), on the shared pool."""
        return RedisChatMessageStore(thread_id=thread_id, redis_client=self._redis, **self._store_options)

    def __repr__(self) -> str:
        where = self._settings.display_url if self._settings is not None else "<caller's redis_client>"
        return f"{type(self).__name__}(options={self._store_options!r}, redis={where!r})"


# -- serialized state ---------------------------------------------------------------------


def _reference_message_dict(reference: Mapping[str, Any]) -> dict[str, Any]:
    # Built through the framework so the dict is in the installed generation's own spelling.
    message = message_from_dict(
        {"role": "system", "contents": [], "additional_properties": {THREAD_REFERENCE_PROPERTY: dict(reference)}}
    )
    return message.to_dict(exclude_none=True)


def _is_thread_reference(message: object) -> bool:
    """True for a message shaped exactly like the thread reference ``serialize()`` writes."""
    properties = getattr(message, "additional_properties", None)
    if not isinstance(properties, Mapping) or THREAD_REFERENCE_PROPERTY not in properties:
        return False
    role = getattr(message, "role", None)
    return str(getattr(role, "value", role)) == "system" and not getattr(message, "contents", None)


def _parse_reference_message(message: object) -> dict[str, Any]:
    properties: Mapping[str, Any] = getattr(message, "additional_properties", {})
    return _parse_reference(properties[THREAD_REFERENCE_PROPERTY], f"messages[].{THREAD_REFERENCE_PROPERTY}")


def _batch_token(messages: Sequence[Any]) -> str:
    """The idempotency key of a batch: from its message ids when every message has one.

    So an application that re-sends a batch after an error (the same messages, the same
    ids) does not store it twice; otherwise a random key still covers redis-py's retries.
    """
    ids = [i for message in messages if isinstance(i := getattr(message, "message_id", None), str) and i]
    if ids and len(ids) == len(messages):
        digest = hashlib.blake2b("\x1f".join(ids).encode("utf-8", "surrogatepass"), digest_size=16)
        return "ids:" + digest.hexdigest()
    return os.urandom(16).hex()


def _parse_reference(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise StoreStateError(f"{where} must be a dict, got {type(raw).__name__}")
    version = raw.get("version", _STATE_VERSION)
    if version != _STATE_VERSION:
        raise StoreStateError(f"{where}['version'] is {version!r}; this version of the store reads {_STATE_VERSION}")
    try:
        return {
            "thread_id": validate_thread_id(raw.get("thread_id"), name=f"{where}['thread_id']"),
            "key_prefix": validate_key_prefix(raw.get("key_prefix", DEFAULT_KEY_PREFIX), name=f"{where}['key_prefix']"),
            "max_messages": _validate_max_messages(raw.get("max_messages"), name=f"{where}['max_messages']"),
            "ttl": _validate_ttl(raw.get("ttl"), name=f"{where}['ttl']"),
        }
    except (TypeError, ValueError) as err:
        raise StoreStateError(str(err)) from err


def _parse_state(state: object) -> tuple[dict[str, Any] | None, list[FrameworkMessage]]:
    """The thread reference and any plain messages of a serialized store state."""
    if not isinstance(state, Mapping):
        raise StoreStateError(f"serialized_store_state must be a dict, got {type(state).__name__}")
    state_type = state.get("type", STATE_TYPE)
    if state_type not in _FOREIGN_STATE_TYPES:
        raise StoreStateError(
            f"serialized_store_state['type'] is {state_type!r}; expected {STATE_TYPE!r} or 'chat_message_store_state'"
        )
    reference = _parse_reference(state, "serialized_store_state") if "thread_id" in state else None
    raw_messages = state.get("messages") or []
    if not isinstance(raw_messages, list):
        raise StoreStateError(f"serialized_store_state['messages'] must be a list, got {type(raw_messages).__name__}")
    message_class = framework_message_class()
    messages: list[FrameworkMessage] = []
    for index, raw in enumerate(raw_messages):
        if isinstance(raw, message_class):
            message = raw
        elif isinstance(raw, Mapping):
            try:
                message = message_from_dict(dict(raw))
            except (TypeError, ValueError, KeyError, AttributeError) as err:
                raise StoreStateError(f"serialized_store_state['messages'][{index}] is not a message: {err}") from err
        else:
            raise StoreStateError(
                f"serialized_store_state['messages'][{index}] must be a message dict, got {type(raw).__name__}"
            )
        embedded = _parse_reference_message(message) if _is_thread_reference(message) else None
        if embedded is None:
            messages.append(message)
        elif reference is None:
            reference = embedded
        elif embedded != reference:
            raise StoreStateError(
                f"serialized_store_state['messages'][{index}] names thread {embedded['thread_id']!r} "
                f"but the state names {reference['thread_id']!r}; the state was altered"
            )
    return reference, messages
