"""Errors raised by the store. Every message names what to look at next."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import (
    AuthenticationError,
    ClusterCrossSlotError,
    ClusterDownError,
    MaxConnectionsError,
    MovedError,
    NoPermissionError,
    RedisClusterException,
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


@contextmanager
def translate_redis_errors(where: str, key: str, holds: str) -> Iterator[None]:
    """Turn redis-py errors into this package's, naming the server ``where`` and the ``key``.

    ``holds`` says what ``key`` should hold, for the error when it holds another type.
    """
    try:
        yield
    except AuthenticationError as err:
        raise RedisStoreError(
            f"Redis at {where} rejected the credentials ({err}); check the username and password"
        ) from err
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
    except RedisClusterException as err:
        raise RedisStoreError(
            f"Redis Cluster client at {where}: {err}; cluster=True needs a Redis Cluster node"
        ) from err
    except ResponseError as err:
        # Inside a script, Redis reports an ACL denial as a plain error with its own wording.
        if isinstance(err, NoPermissionError) or "NOPERM" in str(err) or "can't run this command" in str(err):
            reason = str(err).rstrip(".")
            raise RedisPermissionError(
                f"Redis at {where} refused the user access to {key!r}: {reason}. The ACL user needs the "
                "key patterns of the key prefix and the commands of its role (README: TLS, ACLs)"
            ) from err
        if "WRONGTYPE" in str(err):  # inside a script, Redis < 7 prefixes the error
            raise RedisStoreError(f"Redis key {key!r} holds a value that is not {holds} ({err})") from err
        raise
