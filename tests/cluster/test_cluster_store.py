"""The store's behaviour on a real 3-master Redis Cluster, in either framework generation."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio import RedisCluster
from redis.crc import key_slot
from redis.exceptions import MaxConnectionsError

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, RedisStoreError, RedisUnavailableError
from agent_framework_redis_store._core.cluster import BoundedRedisCluster
from agent_framework_redis_store.testing import EmbeddedRedisCluster

from ..scripted import ScriptedChatClient, make_agent, user_message
from ..test_concurrency import check_history
from .support import close_cluster_client, thread_ids, while_sampling

# Commands that APPEND_AND_TRIM runs inside its one EVALSHA (Redis counts them too).
SCRIPT_INTERNALS = {
    *("rpush", "zscore", "zadd", "zremrangebyrank", "pexpire", "llen", "ltrim", "exists"),
    *("hsetnx", "hset", "hincrby", "hmget", "pttl"),  # the meta hash, in the thread's slot
    *("lindex", "lset", "lrange"),  # the thread's index (group-safe trimming, windows)
}


def texts(messages: list[Any]) -> list[str]:
    return [m.text for m in messages]


def node_client(cluster: EmbeddedRedisCluster, index: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=cluster.nodes[index].port, decode_responses=True)


def command_calls(cluster: EmbeddedRedisCluster) -> list[dict[str, int]]:
    """Per node: how many times each command ran since the last CONFIG RESETSTAT."""
    calls: list[dict[str, int]] = []
    for index in range(len(cluster.nodes)):
        with node_client(cluster, index) as client:
            stats: Any = client.info("commandstats")
            calls.append({name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()})
    return calls


def reset_stats(cluster: EmbeddedRedisCluster) -> None:
    for index in range(len(cluster.nodes)):
        with node_client(cluster, index) as client:
            client.config_resetstat()


async def test_threads_spread_over_every_master_and_each_reads_back_its_own(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    async with RedisChatMessageStore.factory(cluster_url, cluster=True) as factory:
        stores = [factory.store(f"user_{n}") for n in range(30)]
        for store in stores:
            await store.add_messages([user_message(f"{store.thread_id} one"), user_message(f"{store.thread_id} two")])
            await store.add_messages([user_message(f"{store.thread_id} three")])
        for store in stores:
            assert texts(await store.list_messages()) == [f"{store.thread_id} {n}" for n in ("one", "two", "three")]
            assert texts(await store.list_messages(last=1)) == [f"{store.thread_id} three"]
            assert await store.count() == 3
    # The threads really live on all three masters, not on one node.
    owners = {redis_cluster.node_for_key(store.redis_key).port for store in stores}
    assert owners == {node.port for node in redis_cluster.nodes}


@pytest.mark.parametrize("registry", [True, False])
async def test_each_operation_is_one_round_trip_on_the_node_that_owns_the_thread(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster, registry: bool
) -> None:
    ports = [node.port for node in redis_cluster.nodes]
    index = ports.index(redis_cluster.node_for_key(Keyspace("chat_messages").registry).port)
    # A thread on another node than the prefix's registry, so their commands are told apart.
    thread_id = thread_ids(1, lambda key: redis_cluster.node_for_key(key).port != ports[index])[0]
    async with RedisChatMessageStore(
        cluster_url, cluster=True, thread_id=thread_id, ttl=60, max_messages=5, registry=registry
    ) as store:
        await store.add_messages([user_message("warm up")])  # learns the topology, loads the script
        owner = ports.index(redis_cluster.node_for_key(store.redis_key).port)
        assert key_slot(store.redis_key.encode()) == key_slot(
            Keyspace("chat_messages").thread(thread_id).batches.encode()
        )

        # The registry's sorted set is in another slot: its update goes to its own node,
        # at the same time (add) or first (clear), as one more command.
        for operation, on_owner, on_index in [
            (
                lambda: store.add_messages([user_message("a"), user_message("b")]),
                "evalsha",
                "zadd" if registry else None,
            ),
            # The summary's position and the messages, pipelined in one round trip.
            (store.list_messages, ("hmget", "lrange"), None),
            (store.count, "llen", None),
            # The labels to unindex, then the entries (registry: another slot), then the keys.
            (store.clear, ("hget", "del"), ("zrem", "exists")),
        ]:
            reset_stats(redis_cluster)
            await operation()
            calls = command_calls(redis_cluster)
            # Leave out this test's own inspection connections and the commands the script ran.
            # (Redis 7 names subcommands "config|resetstat"; Redis 6.2 says "config".)
            ignored = {"config", "info", "hello", "client"}
            expected: list[dict[str, int]] = [{} for _ in ports]
            for command in (on_owner,) if isinstance(on_owner, str) else on_owner:
                expected[owner][command] = 1
            for command in (on_index,) if isinstance(on_index, str) else on_index or ():
                expected[index][command] = 1
            if operation == store.clear:
                # The prefix's only thread went: so does its label index marker, on its own node.
                marker = ports.index(redis_cluster.node_for_key(Keyspace("chat_messages").labels_complete).port)
                expected[marker]["del"] = expected[marker].get("del", 0) + 1
            ran = []
            for position, node in enumerate(calls):
                internal = SCRIPT_INTERNALS if position == owner and on_owner == "evalsha" else set()
                ran.append({k: v for k, v in node.items() if k.split("|")[0] not in ignored | internal})
            assert ran == expected


async def test_trims_and_slides_the_ttl_of_every_key_of_the_thread(cluster_url: str, cluster_raw: RedisCluster) -> None:
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="t", max_messages=3, ttl=100) as store:
        for n in range(5):
            await store.add_messages([user_message(f"m{n}")])
            assert await store.count() <= 3
        assert texts(await store.list_messages()) == ["m2", "m3", "m4"]
        keys = Keyspace("chat_messages").thread("t")
        for key in (keys.messages, keys.meta, keys.index):
            assert 99_000 < await cluster_raw.pttl(key) <= 100_000


async def test_a_retried_batch_is_stored_once(cluster_url: str) -> None:
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="retry") as store:
        batch = [user_message("question"), user_message("answer")]
        await store.add_messages(batch, idempotency_key="turn-1")
        await store.add_messages(batch, idempotency_key="turn-1")
        assert texts(await store.list_messages()) == ["question", "answer"]


async def test_clear_deletes_the_thread_and_nothing_else(cluster_url: str, cluster_raw: RedisCluster) -> None:
    async with RedisChatMessageStore.factory(cluster_url, cluster=True) as factory:
        doomed, kept = factory.store("doomed"), factory.store("kept")
        for store in (doomed, kept):
            await store.add_messages([user_message(store.thread_id)])
        await doomed.clear()
        assert await cluster_raw.exists(doomed.redis_key) == 0
        assert await cluster_raw.exists(Keyspace("chat_messages").thread("doomed").meta) == 0
        assert texts(await kept.list_messages()) == ["kept"]


async def test_serialized_state_resumes_through_any_node(cluster_url: str, redis_cluster: EmbeddedRedisCluster) -> None:
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="resume me", max_messages=10) as store:
        await store.add_messages([user_message("before the restart")])
        state = await store.serialize()
    assert "127.0.0.1" not in repr(state)  # the state holds no connection settings

    restored = await RedisChatMessageStore.deserialize(state, redis_url=redis_cluster.urls[2], cluster=True)
    async with restored:
        assert restored.thread_id == "resume me"
        assert restored.max_messages == 10
        await restored.add_messages([user_message("after the restart")])
        assert texts(await restored.list_messages()) == ["before the restart", "after the restart"]


async def test_seed_messages_are_written_once(cluster_url: str) -> None:
    seed = [user_message("system prompt")]
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="seeded", messages=seed) as first:
        await first.add_messages([user_message("hello")])
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="seeded", messages=seed) as second:
        assert texts(await second.list_messages()) == ["system prompt", "hello"]


async def test_scripts_are_reloaded_after_a_script_flush_on_every_node(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    async with RedisChatMessageStore.factory(cluster_url, cluster=True) as factory:
        stores = [factory.store(f"flushed_{n}") for n in range(12)]
        for store in stores:
            await store.add_messages([user_message("before")])
        for index in range(len(redis_cluster.nodes)):
            with node_client(redis_cluster, index) as client:
                client.script_flush()
        for store in stores:  # NOSCRIPT on every node: redis-py loads the script and retries
            await store.add_messages([user_message("after")])
            assert texts(await store.list_messages()) == ["before", "after"]


async def test_concurrent_writers_on_one_thread_never_exceed_max_messages(
    cluster_url: str, cluster_raw: RedisCluster
) -> None:
    writers, batches, batch_size, limit = 8, 40, 3, 30
    key = RedisChatMessageStore(redis_client=cluster_raw, thread_id="race").redis_key

    async def write(writer: int) -> None:
        async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="race", max_messages=limit) as store:
            for batch in range(batches):
                await store.add_messages([user_message(f"w{writer}:{batch}:{i}") for i in range(batch_size)])

    observed = await while_sampling(
        lambda: cluster_raw.llen(key),
        asyncio.gather(*(write(w) for w in range(writers))),
    )
    assert len(observed) > 20  # the sampler really ran alongside the writers
    assert max(observed) <= limit
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="race") as reader:
        history = texts(await reader.list_messages())
    assert len(history) == limit
    check_history(history, batch_size=batch_size, batches=batches)


async def _new_connections(samplers: list[redis.asyncio.Redis], before: list[set[str]]) -> list[int]:
    """Per node: client connections opened since ``before`` (ids of the connections then)."""
    counts = []
    for sampler, known in zip(samplers, before, strict=True):
        counts.append(sum(1 for client in await sampler.client_list() if client["id"] not in known))
    return counts


async def test_a_thousand_threads_stay_within_max_connections_on_every_node(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    samplers = [redis.asyncio.Redis(host="127.0.0.1", port=node.port) for node in redis_cluster.nodes]
    # Whatever is connected now (the samplers, a node's cached MIGRATE link) is not counted.
    before = [{client["id"] for client in await sampler.client_list()} for sampler in samplers]
    factory = RedisChatMessageStore.factory(
        cluster_url, cluster=True, max_connections=8, thread_id=lambda: f"user_{os.urandom(4).hex()}"
    )
    stores = [factory() for _ in range(1000)]

    async def use(store: RedisChatMessageStore) -> None:
        await store.add_messages([user_message(store.thread_id)])
        assert texts(await store.list_messages()) == [store.thread_id]
        await store.aclose()  # never closes the shared client

    # The samplers: one connection per node of their own, used one after another.
    observed = await while_sampling(
        lambda: _new_connections(samplers, before), asyncio.gather(*(use(s) for s in stores))
    )

    peaks = [max(sample[index] for sample in observed) for index in range(len(redis_cluster.nodes))]
    # Each node: at most the factory's 8 command connections, plus the one redis-py keeps
    # for topology discovery on the node it started from.
    assert all(1 <= peak <= 8 + 1 for peak in peaks), peaks
    assert max(peaks) >= 3, peaks  # the load was concurrent, not one command at a time
    assert await factory().count() == 0  # the client still works after every store closed
    await factory.aclose()
    for client in samplers:
        await client.aclose()


async def test_redis_py_alone_fails_that_load_instead_of_waiting(cluster_url: str) -> None:
    # Why the factory bounds commands in flight: RedisCluster raises once a node's pool is full.
    client = RedisCluster.from_url(cluster_url, max_connections=8)
    await client.initialize()
    stores = [RedisChatMessageStore(redis_client=client, thread_id=f"t{n}") for n in range(300)]
    results = await asyncio.gather(*(s.add_messages([user_message("x")]) for s in stores), return_exceptions=True)
    failures = [r for r in results if isinstance(r, RedisUnavailableError)]
    assert failures
    assert all(isinstance(r.__cause__, MaxConnectionsError) for r in failures)
    assert "use cluster=True" in str(failures[0])
    await close_cluster_client(client)


async def test_a_command_waits_at_most_pool_timeout_for_a_free_connection(
    cluster_url: str, redis_cluster: EmbeddedRedisCluster
) -> None:
    node = redis_cluster.nodes[0]
    client = BoundedRedisCluster(host="127.0.0.1", port=node.port, max_connections=1, pool_timeout=0.2)
    store = RedisChatMessageStore(redis_client=client, thread_id="waiting")
    blocker = asyncio.create_task(client.blpop(["nothing-ever-arrives"], timeout=3))  # type: ignore[arg-type]

    def blocked_clients() -> int:
        total = 0
        for index in range(len(redis_cluster.nodes)):
            with node_client(redis_cluster, index) as inspector:
                total += int(inspector.info("clients")["blocked_clients"])  # type: ignore[index]
        return total

    for _ in range(500):  # until the blocker holds the only connection (at most 5 s)
        if blocked_clients() == 1:
            break
        await asyncio.sleep(0.01)
    assert blocked_clients() == 1
    with pytest.raises(RedisUnavailableError, match=r"pool_timeout=0\.2"):
        await store.count()
    blocker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocker
    assert await store.count() == 0  # the cancelled command gave its turn back
    await client.aclose()


async def test_a_callers_cluster_client_is_used_and_left_open(cluster_url: str, cluster_raw: RedisCluster) -> None:
    async with RedisChatMessageStore(redis_client=cluster_raw, thread_id="theirs", cluster=True) as store:
        await store.add_messages([user_message("hi")])
    assert await cluster_raw.llen(store.redis_key) == 1  # type: ignore[misc]


async def test_cluster_option_rejects_what_cannot_work(redis_url: str) -> None:
    plain = redis.asyncio.Redis.from_url(redis_url)
    with pytest.raises(TypeError, match="redis_client"):
        RedisChatMessageStore(redis_client=plain, cluster=True)
    await plain.aclose()
    with pytest.raises(ValueError, match="db must be 0"):
        RedisChatMessageStore("redis://127.0.0.1:7000/3", cluster=True)
    with pytest.raises(ValueError, match="db must be 0"):
        RedisChatMessageStore.factory(host="127.0.0.1", port=7000, db=2, cluster=True)
    with pytest.raises(ValueError, match="unix"):
        RedisChatMessageStore("unix:///tmp/redis.sock", cluster=True)


async def test_a_cluster_without_cluster_true_and_cluster_true_without_a_cluster_are_named(
    cluster_url: str, redis_url: str
) -> None:
    # A thread whose slot another master owns than the node in the URL: a plain client meets MOVED.
    node = redis.Redis.from_url(cluster_url)
    elsewhere = next(
        f"t{n}" for n in range(1000) if not _owns(node, Keyspace("chat_messages").thread(f"t{n}").messages)
    )
    node.close()
    async with RedisChatMessageStore(cluster_url, thread_id=elsewhere) as store:
        with pytest.raises(RedisStoreError, match=r"is a Redis Cluster node .*pass cluster=True"):
            await store.add_messages([user_message("hi")])
    async with RedisChatMessageStore(redis_url, thread_id="t", cluster=True) as store:
        with pytest.raises(RedisStoreError, match="cluster=True needs a Redis Cluster node"):
            await store.add_messages([user_message("hi")])
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def _owns(node: redis.Redis, key: str) -> bool:
    """Whether ``node`` (a cluster node) serves ``key``'s slot."""
    slot = key_slot(key.encode())
    own: Any = node.execute_command("CLUSTER", "MYID")
    slots: Any = node.execute_command("CLUSTER", "SLOTS")
    for start, end, *holders in slots:
        if start <= slot <= end:
            return any(holder[2] == own for holder in holders)
    return False


@pytest.mark.legacy
async def test_a_legacy_agent_thread_resumes_on_the_cluster(cluster_url: str) -> None:
    from agent_framework import AgentThread  # pyright: ignore[reportAttributeAccessIssue]

    factory = RedisChatMessageStore.factory(cluster_url, cluster=True, thread_id=lambda: "agent thread")
    agent = make_agent(ScriptedChatClient(), chat_message_store_factory=factory)
    thread = agent.get_new_thread()
    await agent.run("My name is Alice.", thread=thread)
    state = await thread.serialize()

    resumed = await AgentThread.deserialize(state, message_store=factory())
    response = await agent.run("What is my name?", thread=resumed)
    assert response.text == "seen 2: My name is Alice. | What is my name?"
    await factory.aclose()


async def test_a_key_of_the_wrong_type_is_named(cluster_url: str, cluster_raw: RedisCluster) -> None:
    keys = Keyspace("chat_messages").thread("t")
    async with RedisChatMessageStore(cluster_url, cluster=True, thread_id="t") as store:
        await store.add_messages([user_message("one")])
        # A key of the thread: the script checks it before its first write, so nothing is stored.
        await cluster_raw.delete(keys.meta)
        await cluster_raw.set(keys.meta, "damaged")
        with pytest.raises(RedisStoreError, match="nothing was written") as failed:
            await store.add_messages([user_message("two")])
        assert repr(keys.meta) in str(failed.value)
        assert texts(await store.transcript()) == ["one"]
        # The registry is in another slot, updated beside the script: the error names it.
        await cluster_raw.delete(keys.meta)
        registry = Keyspace("chat_messages").registry
        await cluster_raw.delete(registry)
        await cluster_raw.set(registry, "damaged")
        with pytest.raises(RedisStoreError, match="the messages were stored") as failed:
            await store.add_messages([user_message("three")])
        assert repr(registry) in str(failed.value)
