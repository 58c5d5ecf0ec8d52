"""``redis-chat-store --cluster ...`` as real subprocesses against the real cluster."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from agent_framework_redis_store import RedisChatMessageStore, RedisThreadRegistry, ThreadRecord, thread_key
from agent_framework_redis_store.testing import EmbeddedRedisCluster

from ..scripted import user_message
from ..test_cli_threads import cli, cli_json


def populate(url: str) -> None:
    """Ten live threads (labelled by parity) and one 40 days old, spread over the masters."""

    async def main() -> None:
        async with RedisChatMessageStore.factory(url, cluster=True) as factory:
            for n in range(10):
                labels = {"parity": "even" if n % 2 == 0 else "odd"}
                store = RedisChatMessageStore(thread_id=f"live{n}", redis_client=factory.redis_client, labels=labels)
                await store.add_messages([user_message(f"hello {n}"), user_message("again")])
        active = datetime.now(UTC) - timedelta(days=40)
        old = ThreadRecord("old", [user_message("long ago").to_dict(exclude_none=True)], {}, active, active, None, None)
        async with RedisThreadRegistry(url, cluster=True) as registry:
            assert await registry.import_thread(old)

    asyncio.run(main())


def listed(url: str) -> list[str]:
    """What the registry lists, read in-process."""

    async def main() -> list[str]:
        async with RedisThreadRegistry(url, cluster=True) as registry:
            return sorted([t.thread_id async for t in registry.iter_threads()])

    return asyncio.run(main())


def test_the_cli_operates_threads_on_every_node(cluster_url: str, redis_cluster: EmbeddedRedisCluster) -> None:
    populate(cluster_url)
    assert len({redis_cluster.node_for_key(thread_key("chat_messages", f"live{n}")).port for n in range(10)}) == 3

    odd = cli_json(cluster_url, "--cluster", "threads", "list", "--label", "parity=odd")
    assert sorted(t["thread_id"] for t in odd["threads"]) == [f"live{n}" for n in (1, 3, 5, 7, 9)]
    stats = cli_json(cluster_url, "--cluster", "stats")
    assert (stats["threads"], stats["messages"]) == (11, 21)
    shown = cli_json(cluster_url, "--cluster", "threads", "show", "live4")
    assert [m["contents"][0]["text"] for m in shown["messages"]] == ["hello 4", "again"]

    deleted = cli_json(cluster_url, "--cluster", "threads", "delete", "live0", "live1", "--yes")
    assert (deleted["deleted"], deleted["thread_ids"]) == (2, ["live0", "live1"])
    purged = cli(cluster_url, "--cluster", "threads", "purge", "--older-than", "30d", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert "deleted 1 thread(s)" in purged.stdout
    assert listed(cluster_url) == [f"live{n}" for n in range(2, 10)]


def test_cluster_and_redis_url_go_before_the_command_or_after_it(cluster_url: str) -> None:
    populate(cluster_url)
    odd = ("--label", "parity=odd")
    expected = [f"live{n}" for n in (1, 3, 5, 7, 9)]
    for args in (
        ["--redis-url", cluster_url, "--cluster", "threads", "list", *odd],
        ["threads", "--redis-url", cluster_url, "--cluster", "list", *odd],
        ["threads", "list", *odd, "--redis-url", cluster_url, "--cluster"],
        ["--cluster", "threads", "list", *odd, "--redis-url", cluster_url],
    ):
        done = cli(None, *args, "--json")
        assert done.returncode == 0, (args, done.stderr)
        assert sorted(t["thread_id"] for t in json.loads(done.stdout)["threads"]) == expected, args
    stats = cli_json(cluster_url, "stats", env={"REDIS_CLUSTER": "1"})
    assert stats["threads"] == 11
    # The nearest says standalone: the node answers MOVED for keys of other nodes, and the error says why.
    standalone = cli(cluster_url, "--cluster", "stats", "--no-cluster")
    assert standalone.returncode == 1, standalone.stdout
    assert standalone.stderr.strip().splitlines() == [
        f"error: the Redis at {cluster_url} is a Redis Cluster node: pass --cluster or set REDIS_CLUSTER=1"
    ]
