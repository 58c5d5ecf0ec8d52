"""Errors raised by the store. Every message names what to look at next."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import (
    AuthenticationError,
    ClusterCrossSlotError,
    ClusterDownError,
    MaxConnectionsError,
    MovedError,
    NoPermissionError,
    OutOfMemoryError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class RedisStoreError(Exception):
    """Base class of every error this package raises on purpose."""


class StoreStateError(RedisStoreError, ValueError):
    """A serialized store state is not one this package wrote (wrong shape or tampered)."""


class CorruptMessageError(RedisStoreError):
    """A stored entry cannot be decoded into a framework message.

    ``key`` and ``index`` address the entry (``LINDEX key index`` shows it); nothing
    else in the thread is touched.
    """

    def __init__(self, key: str, index: int, reason: str) -> None:
        self.key = key
        self.index = index
        self.reason = reason
        super().__init__(
            f"Corrupt entry in Redis list {key!r} at index {index}: {reason}. "
            f"Inspect it with LINDEX; remove it with LSET + LREM or clear the thread."
        )


class CorruptThreadMetaError(RedisStoreError, ValueError):
    """A field of a thread's meta hash does not hold what the store writes there.

    ``key`` and ``field`` address it (``HGET key field`` shows it). Listings skip such a
    thread and report it; deleting, purging and erasing it still work.
    """

    def __init__(self, key: str, field: str, reason: str) -> None:
        self.key = key
        self.field = field
        self.reason = reason
        super().__init__(
            f"Corrupt field {field!r} of the Redis hash {key!r}: {reason}. "
            f"Inspect it with HGET; delete the field (HDEL) or the thread to go on."
        )


class RedisUnavailableError(RedisStoreError, ConnectionError):
    """Redis could not be reached after the configured retry policy was exhausted."""


class DecryptionError(CorruptMessageError):
    """A stored entry cannot be decrypted: unknown key id, tampered or moved ciphertext, or a
    plaintext entry where ciphertext was expected (and the reverse).

    ``key`` and ``index`` address the entry; the error never includes key material or
    message text, and nothing else in the thread is touched.
    """

    def __init__(self, key: str, index: int, reason: str) -> None:
        self.key = key
        self.index = index
        self.reason = reason
        Exception.__init__(self, f"Cannot decrypt the entry in Redis list {key!r} at index {index}: {reason}.")


class RedisPermissionError(RedisStoreError, PermissionError):
    """The Redis user (ACL) may not run a command the store needs on the thread's keys."""


class RedisOutOfMemoryError(RedisStoreError):
    """Redis refused a write: ``maxmemory`` is reached and its ``maxmemory-policy`` is ``noeviction``.

    The write was not applied. Raise ``maxmemory`` or free memory (``RedisThreadRegistry.purge``
    old threads, a ``ttl=``), then retry.
    """


class ThreadNotFoundError(RedisStoreError, LookupError):
    """No thread with this id exists under the key prefix (never written, deleted or expired)."""

    def __init__(self, thread_id: str, key_prefix: str) -> None:
        self.thread_id = thread_id
        self.key_prefix = key_prefix
        super().__init__(f"No thread {thread_id!r} under key prefix {key_prefix!r}")


class ThreadRecordError(RedisStoreError, ValueError):
    """An exported thread record (one JSONL line) is malformed; the message says which field."""


class CorruptSessionError(RedisStoreError):
    """A stored session snapshot cannot be restored into an ``AgentSession``.

    ``session_id`` and ``key`` address the snapshot; nothing else is touched.
    """

    def __init__(self, session_id: str, key: str, reason: str) -> None:
        self.session_id = session_id
        self.key = key
        self.reason = reason
        super().__init__(
            f"Corrupt session snapshot for session {session_id!r} in Redis key {key!r}: {reason}. "
            f"Inspect it with GET; delete it (RedisSessionStore.delete) to start the session afresh."
        )


class PlainServerError(RedisError):
    """A ``rediss://`` URL names a server that answers plain Redis, not TLS.

    Not a ``ConnectionError``: retrying cannot help, so the retry policy gives up at once.
    """


class DatabaseOutOfRangeError(ResponseError):
    """The URL selects a database the server does not have (``/99`` of 16)."""

    def __init__(self, db: int, databases: int | None) -> None:
        self.db = db
        self.databases = databases
        super().__init__(f"database {db} does not exist on the server: {_databases(databases)}")


# What a script reports before its first write (lua.INDEX_LIBRARY): a key of the wrong type
# (the type it should hold) or a damaged meta field (its name), then the key's bytes in hex.
_SCRIPT_REPORT = re.compile(r"(WRONGTYPE_KEY|CORRUPT_META) (\w+) ((?:[0-9a-f]{2})+)")
_TYPE_NAMES = {"list": "list", "hash": "hash", "zset": "sorted set"}


def _script_report(err: ResponseError) -> RedisStoreError | None:
    """The package's error for a script's report, naming the key (and field); None for any other error."""
    found = _SCRIPT_REPORT.search(str(err))
    if found is None:
        return None
    report, detail, key = found.group(1), found.group(2), bytes.fromhex(found.group(3)).decode("utf-8", "replace")
    if report == "CORRUPT_META":
        return CorruptThreadMetaError(key, detail, "not an integer (nothing was changed)")
    return RedisStoreError(
        f"Redis key {key!r} holds another type than the {_TYPE_NAMES.get(detail, detail)} the store keeps "
        "there, so nothing was written; inspect it with TYPE, then repair or delete it"
    )


def is_wrong_type(reply: object) -> bool:
    """Whether a pipeline reply is Redis' WRONGTYPE error: a key of another type than the command's (damaged)."""
    return isinstance(reply, ResponseError) and "WRONGTYPE" in str(reply)


def wrong_type_kept(replies: list[Any]) -> list[Any]:
    """A pipeline's replies (``execute(raise_on_error=False)``) with WRONGTYPE errors kept as values
    for the caller to treat as a damaged key; any other error is raised."""
    for reply in replies:
        if isinstance(reply, Exception) and not is_wrong_type(reply):
            raise reply
    return replies


@contextmanager
def translate_redis_errors(where: str, key: str, holds: str) -> Iterator[None]:
    """Turn redis-py errors into this package's, naming the server ``where`` and the ``key``.

    ``holds`` says what ``key`` should hold, for the error when it holds another type.
    """
    try:
        with kept_cancellation():
            yield
    except RedisStoreError:
        # Already the package's (a nested translation): RedisPermissionError is an OSError too,
        # and must not become "unreachable" below.
        raise
    except AuthenticationError as err:
        if _NO_CREDENTIALS_GIVEN.search(str(err)):
            raise RedisStoreError(
                f"Redis at {where}: the server requires a password (AUTH) and none was given; put it in "
                "redis_url (redis://:PASSWORD@host:port/0, or redis://USER:PASSWORD@... for an ACL user) "
                "or pass password="
            ) from err
        raise RedisStoreError(
            f"Redis at {where} rejected the credentials ({err}); check the username and password"
        ) from err
    except PlainServerError as err:
        raise RedisUnavailableError(
            f"Redis at {where}: the server did not answer the TLS handshake (is it serving TLS?); it answers "
            "plain Redis on that port: use a redis:// URL for it, or the port it serves TLS on"
        ) from err
    except DatabaseOutOfRangeError as err:
        raise RedisStoreError(f"Redis at {where} has no database {err.db}: {_databases(err.databases)}") from err
    except MaxConnectionsError as err:
        # redis-py's RedisCluster fails at once when a node's pool is full; it does not wait.
        raise RedisUnavailableError(
            f"Redis at {where}: every connection of the client's pool is in use ({err}); "
            f"a plain RedisCluster does not wait for one: use cluster=True, whose client waits for a free connection"
        ) from err
    except (RedisConnectionError, RedisTimeoutError, ClusterDownError, OSError) as err:
        raise RedisUnavailableError(
            f"Redis at {where} is unreachable after retrying ({type(err).__name__}: {err})"
        ) from err
    except (MovedError, ClusterCrossSlotError) as err:
        # A cluster client follows MOVED itself and the store keeps a cluster's keys in one slot:
        # only a plain client, unaware of the cluster, meets either.
        raise RedisStoreError(
            f"Redis at {where} is a Redis Cluster node ({type(err).__name__} for {key!r}); "
            "pass cluster=True (or a RedisCluster client)"
        ) from err
    except OutOfMemoryError as err:
        raise _out_of_memory(where, key) from err
    except RedisClusterException as err:
        raise RedisStoreError(
            f"Redis Cluster client at {where}: {err}; cluster=True needs a Redis Cluster node"
        ) from err
    except ResponseError as err:
        if "OOM command not allowed" in str(err):  # inside a script, Redis < 7 wraps the error
            raise _out_of_memory(where, key) from err
        # Inside a script, Redis reports an ACL denial as a plain error with its own wording.
        if isinstance(err, NoPermissionError) or "NOPERM" in str(err) or "can't run this command" in str(err):
            reason = str(err).rstrip(".")
            raise RedisPermissionError(
                f"Redis at {where} refused the user access to {key!r}: {reason}. The ACL user needs the "
                "key patterns of the key prefix and the commands of its role (docs/SECURITY.md: TLS, ACLs)"
            ) from err
        if (reported := _script_report(err)) is not None:
            raise reported from err
        if "WRONGTYPE" in str(err):  # inside a script, Redis < 7 prefixes the error
            raise RedisStoreError(f"Redis key {key!r} holds a value that is not {holds} ({err})") from err
        raise


# What a server that needs a password says to a client that gave none: to its first command
# (RESP2) or to HELLO (RESP3).
_NO_CREDENTIALS_GIVEN = re.compile(r"Authentication required|must be called with the client already authenticated")


def _databases(count: int | None) -> str:
    if not count:
        return "it has fewer (CONFIG GET databases tells how many)"
    return f"it has {count} (0 to {count - 1}); choose one of them as the URL's path (/0) or as db="


def _out_of_memory(where: str, key: str) -> RedisOutOfMemoryError:
    return RedisOutOfMemoryError(
        f"Redis at {where} is out of memory (maxmemory reached, maxmemory-policy noeviction) and refused "
        f"the write to {key!r} (nothing of it was written). Raise maxmemory, or free memory (purge old "
        "threads, set a ttl=), then retry"
    )


# -- cancellation that redis-py loses ---------------------------------------------------------
#
# On Python 3.11, asyncio.wait_for returns the result and drops a cancel() that arrives as its
# awaitable completes; redis-py sends every command through wait_for(socket_timeout), so a task
# cancelled at that moment runs on as if never cancelled (a loop over pages: to its end). The
# task still counts the request (Task.cancelling()): a Redis call after which the count grew
# was cancelled, and raises CancelledError itself.


def cancel_requests() -> int:
    """How many times the running task has been asked to cancel (-1 outside a task)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return -1
    return -1 if task is None else task.cancelling()


def raise_if_cancelled(requested: int) -> None:
    """Raise ``CancelledError`` if the task was asked to cancel since ``cancel_requests()`` returned ``requested``."""
    if requested >= 0 and cancel_requests() > requested:
        raise asyncio.CancelledError


class kept_cancellation:
    """Re-raise, as the block ends, a cancellation requested inside it that got lost.

    A block that failed after such a loss (a timeout of a server that stopped answering, which
    redis-py then retried) raises ``CancelledError`` too: the caller asked to stop.
    """

    __slots__ = ("_requested",)

    def __enter__(self) -> None:
        self._requested = cancel_requests()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None or not issubclass(exc_type, asyncio.CancelledError):
            raise_if_cancelled(self._requested)


# -- workflow checkpoints ------------------------------------------------------------------


class CheckpointNotFoundError(RedisStoreError, LookupError):
    """No checkpoint with this id under the key prefix (never saved, deleted, trimmed or expired).

    In Agent Framework 1.x it is also a ``WorkflowCheckpointException``, as the protocol asks.
    """

    def __init__(self, checkpoint_id: str, key_prefix: str) -> None:
        self.checkpoint_id = checkpoint_id
        self.key_prefix = key_prefix
        super().__init__(f"No checkpoint found with ID {checkpoint_id!r} under key prefix {key_prefix!r}")


class CorruptCheckpointError(RedisStoreError):
    """A stored workflow checkpoint cannot be restored.

    ``key`` and ``checkpoint_id`` address it (``HGET key checkpoint_id`` shows it); nothing else
    is touched. A sealed checkpoint that fails to open raises ``DecryptionError`` instead.
    """

    def __init__(self, key: str, checkpoint_id: str, reason: str) -> None:
        self.key = key
        self.checkpoint_id = checkpoint_id
        self.reason = reason
        super().__init__(
            f"Corrupt checkpoint {checkpoint_id!r} in the Redis hash {key!r}: {reason}. "
            f"Inspect it with HGET; delete it (RedisCheckpointStorage.delete) to go on."
        )
