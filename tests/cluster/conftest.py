"""One real 3-master Redis Cluster per test session, on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import RedisCluster

from agent_framework_redis_store.testing import EmbeddedRedisCluster

from .support import close_cluster_client


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[EmbeddedRedisCluster]:
    """Three masters, no replicas, AOF with fsync always (a killed node restarts with its data)."""
    cluster = EmbeddedRedisCluster(masters=3).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: EmbeddedRedisCluster) -> str:
    """Any node's URL, with every node running, the cluster ok and every key deleted."""
    for node in redis_cluster.nodes:
        if not node.running:  # a test that killed a node failed before restarting it
            node.start()
    redis_cluster.wait_until_ok()
    redis_cluster.flushall()
    return redis_cluster.url


@pytest.fixture
async def cluster_raw(cluster_url: str) -> AsyncIterator[RedisCluster]:
    """A plain redis-py cluster client, to inspect what the store wrote."""
    client = RedisCluster.from_url(cluster_url)
    try:
        yield client
    finally:
        await close_cluster_client(client)
