"""Shared fixtures: a private redis-server per test session, never the machine's own Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from agent_framework_redis_store import GENERATION
from agent_framework_redis_store.testing import EmbeddedRedis


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    other = "current" if GENERATION == "legacy" else "legacy"
    skip = pytest.mark.skip(reason=f"needs the {other} Agent Framework generation; this environment is {GENERATION}")
    for item in items:
        if other in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    from importlib.metadata import version

    # The legacy release's agent_framework.__version__ says 0.0.0: ask the installed distribution.
    return f"agent framework generation: {GENERATION} (agent-framework-core {version('agent-framework-core')})"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """One redis-server for the session, on a free loopback port."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session server's URL, emptied before each test."""
    if not redis_server.running:
        redis_server.start()
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def own_server() -> Iterator[EmbeddedRedis]:
    """A redis-server of the test's own, free to be killed, paused or restarted."""
    server = EmbeddedRedis(appendonly=True, appendfsync="always").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client on the session server, to inspect what the store wrote."""
    # An observer: a test's own load on the loop must never time it out (redis-py's default is 5 s).
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=120, socket_connect_timeout=120)
    try:
        yield client
    finally:
        await client.aclose()
