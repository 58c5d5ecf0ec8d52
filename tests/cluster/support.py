"""Helpers shared by the cluster tests."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import RedisCluster

from agent_framework_redis_store import thread_key


async def close_cluster_client(client: RedisCluster) -> None:
    """Close a plain RedisCluster, including the discovery connection its aclose() leaves open."""
    await client.aclose()
    await client.nodes_manager.aclose("startup_nodes")


def thread_ids(count: int, accept: Callable[[str], bool], prefix: str = "t") -> list[str]:
    """The first ``count`` thread ids ``f"{prefix}{n}"`` whose message key ``accept`` takes."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        if accept(thread_key("chat_messages", f"{prefix}{n}")):
            found.append(f"{prefix}{n}")
        n += 1
    return found
