"""Helpers shared by the cluster tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import RedisCluster

from agent_framework_redis_store import thread_key

T = TypeVar("T")


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


async def while_sampling(sample: Callable[[], Awaitable[T]], work: Awaitable[Any]) -> list[T]:
    """Run ``work`` and, until it is done, ``sample`` one call after another; the samples."""
    running = asyncio.ensure_future(work)
    samples: list[T] = []
    while not running.done():
        samples.append(await sample())
    await running
    return samples
