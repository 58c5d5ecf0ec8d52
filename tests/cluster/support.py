"""Helpers shared by the cluster tests."""

from __future__ import annotations

from redis.asyncio import RedisCluster


async def close_cluster_client(client: RedisCluster) -> None:
    """Close a plain RedisCluster, including the discovery connection its aclose() leaves open."""
    await client.aclose()
    await client.nodes_manager.aclose("startup_nodes")
