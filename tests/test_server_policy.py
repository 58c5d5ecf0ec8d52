"""The server's memory policy: out of memory is the package's error, and an evicting policy is warned about.

Each test has a redis-server of its own with a small ``maxmemory`` and the policy under test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
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


# -- an evicting policy is warned about, once per client -------------------------------------------


def _policy_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "agent_framework_redis_store"
        and r.levelno == logging.WARNING
        and "maxmemory-policy" in r.getMessage()
    ]


@pytest.fixture
def evicting_server() -> Iterator[EmbeddedRedis]:
    server = _server("allkeys-lru")
    try:
        yield server
    finally:
        server.stop()


async def _talk(store: RedisChatMessageStore, turns: int = 3) -> None:
    for n in range(turns):
        await store.add_messages([user_message(f"q{n}"), user_message(f"a{n}")])
        await store.list_messages()


async def test_an_allkeys_policy_is_warned_about_once_per_client(
    evicting_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent_framework_redis_store")
    async with RedisChatMessageStore.factory(evicting_server.url) as factory:
        for store in (factory.store("a"), factory.store("b"), factory.store("a")):
            await _talk(store)
    [warning] = _policy_warnings(caplog)
    assert f"127.0.0.1:{evicting_server.port}" in warning
    assert "allkeys-lru" in warning
    assert "noeviction" in warning
    assert "volatile-" in warning

    caplog.clear()  # a caller's client shared by two stores: warned about once too
    client = redis.asyncio.Redis.from_url(evicting_server.url)
    for thread_id in ("c", "d"):
        await _talk(RedisChatMessageStore(redis_client=client, thread_id=thread_id))
    await client.aclose()
    assert len(_policy_warnings(caplog)) == 1


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru"])
async def test_a_policy_that_evicts_no_thread_keys_is_not_warned_about(
    policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(policy)
    try:
        async with RedisChatMessageStore.factory(server.url) as factory:
            await _talk(factory.store("a"))
            await _talk(factory.store("b"))
    finally:
        server.stop()
    assert _policy_warnings(caplog) == []


async def test_a_user_denied_info_gets_no_warning_and_no_error(
    evicting_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    with redis.Redis(port=evicting_server.port) as admin:
        admin.execute_command("ACL", "SETUSER", "app", "on", ">app-pw", "~*", "+@all", "-info", "-config")
    url = f"redis://app:app-pw@127.0.0.1:{evicting_server.port}/0"
    async with RedisChatMessageStore(url, thread_id="t") as store:
        await _talk(store)
        assert len(await store.list_messages()) == 6
    assert _policy_warnings(caplog) == []


@pytest.mark.current
async def test_the_session_store_warns_once_too(
    evicting_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisSessionStore

    async with RedisSessionStore(evicting_server.url) as sessions:
        for session_id in ("s1", "s2", "s1"):
            await sessions.set(session_id, AgentSession(session_id=session_id))
            assert await sessions.get(session_id) is not None
    assert len(_policy_warnings(caplog)) == 1
