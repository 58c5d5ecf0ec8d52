"""An evicting maxmemory-policy on any primary of a Redis Cluster is warned about, once per client."""

from __future__ import annotations

import logging

import pytest
import redis

from agent_framework_redis_store import RedisChatMessageStore
from agent_framework_redis_store.testing import EmbeddedRedisCluster

from ..scripted import user_message


async def test_an_allkeys_policy_on_one_primary_is_warned_about_once(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    node = redis_cluster.nodes[-1]  # not the node the client is given
    with redis.Redis(port=node.port) as admin:
        admin.config_set("maxmemory-policy", "allkeys-lfu")
    try:
        async with RedisChatMessageStore.factory(cluster_url, cluster=True) as factory:
            for thread_id in ("a", "b", "c", "a"):
                await factory.store(thread_id).add_messages([user_message("hi")])
    finally:
        with redis.Redis(port=node.port) as admin:
            admin.config_set("maxmemory-policy", "noeviction")
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "maxmemory-policy" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "allkeys-lfu" in warnings[0]
