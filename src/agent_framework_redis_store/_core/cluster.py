"""Redis Cluster: a ``redis.asyncio.RedisCluster`` whose connections stay bounded under load.

redis-py's cluster client keeps a pool of at most ``max_connections`` per node and raises
``MaxConnectionsError`` the moment one is exhausted. A store factory serving 1,000
threads at once must wait for a free connection instead, as the single-node
``BlockingConnectionPool`` does: :class:`BoundedRedisCluster` lets at most
``max_connections`` commands (or pipelines) be in flight and queues the rest for up to
``pool_timeout`` seconds. No node then sees more than ``max_connections`` connections for
commands (plus the one redis-py keeps on a node it discovered the cluster from).

Every key of one thread shares the thread's hash tag (see ``keys.py``), so each per-thread
command or script is routed to one slot on one node: MOVED, ASK and TRYAGAIN during a
resharding are followed by redis-py's redirection handling.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ClusterError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["BoundedRedisCluster", "PoolTimeoutError", "RedisClient", "is_cluster"]

# What the stores talk to: one Redis, or a Redis Cluster.
RedisClient = Redis | RedisCluster

# Set while a task holds a slot of the gate, so nested calls (a pipeline retrying a
# redirected command through the client) do not wait on themselves.
_inside_gate: contextvars.ContextVar[BoundedRedisCluster | None] = contextvars.ContextVar(
    "agent_framework_redis_store_inside_gate", default=None
)


# redis-py follows up to 16 redirections per command within about half a second; during a
# slot migration a thread's keys can stay split between two nodes for longer. Rounds of
# that, with backoff, give a resharding about 10 seconds before an error surfaces.
_REDIRECT_ROUNDS = 12
_REDIRECT_BACKOFF = 0.05


def _only_redirected(err: Exception) -> bool:
    """True if ``err`` says every attempt was redirected or refused before running."""
    if isinstance(err, TryAgainError):
        return True
    # redis-py's own ClusterError (not a subclass such as ClusterDownError) after its
    # redirection budget ran out.
    return type(err) is ClusterError and "TTL exhausted" in str(err)


class PoolTimeoutError(RedisConnectionError):
    """No connection became free within ``pool_timeout`` seconds."""


class BoundedRedisCluster(RedisCluster):
    """A ``RedisCluster`` with at most ``max_connections`` commands in flight; the rest wait.

    Keyword Args:
        max_connections: Commands (and pipelines) in flight at once, and so the most
            connections any node's pool opens.
        pool_timeout: Seconds a command waits for its turn before ``PoolTimeoutError``
            (None: wait indefinitely).

    Any other argument is ``RedisCluster``'s.
    """

    def __init__(
        self,
        *args: Any,
        max_connections: int = 32,
        pool_timeout: float | None = 20.0,
        reinitialize_steps: int = 0,
        **kwargs: Any,
    ):
        # reinitialize_steps=0: a MOVED reply re-routes its slot only. redis-py's periodic
        # full refresh on MOVED closes every connection, also those other tasks are using.
        super().__init__(*args, max_connections=max_connections, reinitialize_steps=reinitialize_steps, **kwargs)
        self._gate_size = max_connections
        self._gate = asyncio.Semaphore(max_connections)
        self._pool_timeout = pool_timeout

    @property
    def max_in_flight(self) -> int:
        """How many commands may be in flight at once."""
        return self._gate_size

    async def _enter(self) -> contextvars.Token[BoundedRedisCluster | None] | None:
        """Wait for a turn (None if this task already has one); give it back with ``_leave``."""
        if _inside_gate.get() is self:
            return None
        if self._gate.locked():
            try:
                async with asyncio.timeout(self._pool_timeout):
                    await self._gate.acquire()
            except TimeoutError:
                raise PoolTimeoutError(
                    f"no free cluster connection within pool_timeout={self._pool_timeout} s "
                    f"({self._gate_size} commands in flight)"
                ) from None
        else:
            await self._gate.acquire()  # free: returns at once, no timer on the common path
        return _inside_gate.set(self)

    def _leave(self, marker: contextvars.Token[BoundedRedisCluster | None] | None) -> None:
        if marker is not None:
            _inside_gate.reset(marker)
            self._gate.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        delay = _REDIRECT_BACKOFF
        for attempt in range(_REDIRECT_ROUNDS):
            marker = await self._enter()
            try:
                if self._initialize:
                    # Learn the topology before routing: redis-py routes a command that
                    # arrives while the client is (re)initializing to a random node, and the
                    # MOVED storm that follows breaks concurrent commands.
                    await self.initialize()
                return await super().execute_command(*args, **kwargs)
            except AttributeError as err:
                if err.obj is not None:  # pyright: ignore[reportAttributeAccessIssue]
                    raise  # a bug, not a closed stream
                raise _closed_under_us(self, err) from err
            except (ClusterError, TryAgainError) as err:
                if not _only_redirected(err) or attempt == _REDIRECT_ROUNDS - 1:
                    raise
            finally:
                self._leave(marker)
            # Every node refused the command (MOVED/ASK/TRYAGAIN): it never ran, so it is
            # safe to send again once the migration has moved on.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close every connection of the client."""
        if _inside_gate.get() is self:
            # redis-py closes the whole client when a node answers CLUSTERDOWN, to re-learn
            # the topology; that cuts the connections other tasks' commands are reading
            # from. Re-learning the topology before the next command is enough.
            self._initialize = True
            return
        await super().aclose()
        await self.nodes_manager.aclose()
        # redis-py's aclose() leaves open the connection it discovered the cluster through.
        await self.nodes_manager.aclose("startup_nodes")

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # redis-py raises its own error
        return _BoundedPipeline(self, transaction)  # pyright: ignore[reportAbstractUsage]


class _BoundedPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        client = self.cluster_client
        assert isinstance(client, BoundedRedisCluster)
        marker = await client._enter()
        try:
            await client.initialize()
            return await super().execute(raise_on_error, allow_redirections)
        except AttributeError as err:
            if err.obj is not None:  # pyright: ignore[reportAttributeAccessIssue]
                raise  # a bug, not a closed stream
            raise _closed_under_us(client, err) from err
        finally:
            client._leave(marker)


def _closed_under_us(client: BoundedRedisCluster, err: AttributeError) -> RedisConnectionError:
    """redis-py's cluster client disconnects a failed node's connections (re-learning the topology)
    while other tasks are writing on them; their write then meets a closed stream (None) and
    raises AttributeError. That is the node's failure: a ConnectionError (nothing was sent), and
    the topology is re-learnt before the next command."""
    client._initialize = True
    return RedisConnectionError(f"the connection was closed while in use ({err})")


def is_cluster(client: object) -> bool:
    """True for a Redis Cluster client, where a prefix's registry and a thread live in different slots."""
    return isinstance(client, RedisCluster)
