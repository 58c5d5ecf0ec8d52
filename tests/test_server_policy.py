"""The server's memory policy: out of memory is the package's error, and an evicting policy is warned about.

Each test has a redis-server of its own with a small ``maxmemory`` and the policy under test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import OutOfMemoryError

from agent_framework_redis_store import (
    RedisChatMessageStore,
    RedisOutOfMemoryError,
    RedisStoreError,
)
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message

PASSWORD = "oom-Secret-7f3a"


def _server(policy: str, *extra: str) -> EmbeddedRedis:
    return EmbeddedRedis(extra_args=["--maxmemory", "4mb", "--maxmemory-policy", policy, *extra]).start()


@pytest.fixture
def full_server() -> Iterator[EmbeddedRedis]:
    """A password-protected server with maxmemory-policy noeviction, holding more than its maxmemory."""
    server = _server("noeviction", "--requirepass", PASSWORD)
    try:
        with redis.Redis(port=server.port, password=PASSWORD) as client:
            client.config_set("maxmemory", 0)
            for n in range(20):
                client.set(f"filler:{n}", b"x" * 100_000)
            # Below what it holds: every write that may add data is refused, however small.
            client.config_set("maxmemory", "1mb")
            with pytest.raises(OutOfMemoryError):
                client.set("probe", "x")
        yield server
    finally:
        server.stop()


def _url(server: EmbeddedRedis) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


def _thread_keys(server: EmbeddedRedis) -> list[bytes]:
    with redis.Redis(port=server.port, password=PASSWORD) as client:
        return sorted(k for k in client.scan_iter() if not k.startswith(b"filler:"))


def _free(server: EmbeddedRedis) -> None:
    with redis.Redis(port=server.port, password=PASSWORD) as client:
        client.delete(*client.keys("filler:*"))  # type: ignore[misc]
        client.config_set("maxmemory", 0)


def _check(err: RedisOutOfMemoryError, server: EmbeddedRedis, key: str) -> None:
    message = str(err)
    assert isinstance(err, RedisStoreError)
    assert f"127.0.0.1:{server.port}" in message  # the server, credentials redacted
    assert PASSWORD not in message
    assert PASSWORD not in repr(err.__cause__)
    assert repr(key) in message
    assert "nothing of it was written" in message
    assert "Raise maxmemory" in message
    assert "purge" in message


async def test_an_append_refused_for_memory_raises_the_package_error_and_writes_nothing(
    full_server: EmbeddedRedis,
) -> None:
    async with RedisChatMessageStore(_url(full_server), thread_id="t", labels={"user": "u"}) as store:
        with pytest.raises(RedisOutOfMemoryError) as caught:
            await store.add_messages([user_message("hello")])
        _check(caught.value, full_server, store.redis_key)
        assert _thread_keys(full_server) == []
        assert await store.list_messages() == []  # reads still work
        _free(full_server)
        await store.add_messages([user_message("hello")])  # and once memory is freed, so do writes
        assert [m.text for m in await store.list_messages()] == ["hello"]


@pytest.mark.current
async def test_a_provider_save_and_a_session_snapshot_refused_for_memory_raise_the_package_error(
    full_server: EmbeddedRedis,
) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore

    async with RedisChatHistoryProvider(_url(full_server)) as provider:
        with pytest.raises(RedisOutOfMemoryError) as caught:
            await provider.save_messages("s", [user_message("hello")])
        _check(caught.value, full_server, "chat_messages:{s}")
    async with RedisSessionStore(_url(full_server)) as sessions:
        with pytest.raises(RedisOutOfMemoryError) as caught:
            await sessions.set("s", AgentSession(session_id="s"))
        _check(caught.value, full_server, sessions.key_for("s"))
    assert _thread_keys(full_server) == []
