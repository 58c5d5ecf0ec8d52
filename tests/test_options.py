"""One options path: the same option means the same thing, and fails the same way, on every class."""

from __future__ import annotations

import os
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    ConnectionSettings,
    CorruptSessionError,
    Keyspace,
    RedisChatMessageStore,
    RedisStoreFactory,
    RedisThreadRegistry,
)

from .scripted import user_message

KEY1, KEY2 = os.urandom(32), os.urandom(32)


async def _snapshot(raw: redis.asyncio.Redis, key: str) -> bytes:
    value = await raw.get(key)
    assert isinstance(value, bytes)
    return value


def _classes() -> list[Any]:
    from agent_framework_redis_store import GENERATION

    classes: list[Any] = [RedisChatMessageStore, RedisStoreFactory, RedisThreadRegistry]
    if GENERATION == "current":
        from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore

        classes += [RedisChatHistoryProvider, RedisSessionStore]
    return classes


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        ({"key_prefix": "a{b}"}, ValueError, "key_prefix must not contain"),
        ({"key_prefix": ""}, ValueError, "key_prefix must be a non-empty str"),
        ({"encryption": b"key"}, TypeError, "encryption must provide"),
        ({"port": 70000}, ValueError, "port must be an int between 1 and 65535"),
        ({"max_connections": 0}, ValueError, "max_connections must be at least 1"),
    ],
)
def test_every_class_rejects_a_bad_shared_option_with_the_same_error(
    options: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    for cls in _classes():
        with pytest.raises(error, match=fragment.replace("{", r"\{")):
            cls("redis://127.0.0.1:1", **options)


def test_an_unknown_option_is_a_type_error_naming_class_and_option() -> None:
    for cls in _classes():
        with pytest.raises(TypeError, match=rf"{cls.__name__}\(\) got an unexpected keyword argument 'max_mesages'"):
            cls("redis://127.0.0.1:1", max_mesages=5)


@pytest.mark.current
def test_the_session_store_and_registry_refuse_options_they_do_not_use() -> None:
    from agent_framework_redis_store import RedisSessionStore

    with pytest.raises(TypeError, match="'max_messages'"):
        RedisSessionStore("redis://127.0.0.1:1", max_messages=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'ttl'"):
        RedisThreadRegistry("redis://127.0.0.1:1", ttl=5)  # type: ignore[call-arg]


async def test_a_connection_settings_value_is_accepted_everywhere(redis_url: str) -> None:
    settings = ConnectionSettings(redis_url=redis_url, max_connections=4)
    async with RedisChatMessageStore(thread_id="t", connection=settings) as store:
        await store.add_messages([user_message("hello")])
    async with RedisStoreFactory(connection=settings) as factory:
        assert [m.text for m in await factory.store("t").list_messages()] == ["hello"]
    async with RedisThreadRegistry(connection=settings) as registry:
        assert [t.thread_id for t in (await registry.list_threads()).threads] == ["t"]


def test_connection_settings_and_separate_connection_options_are_not_mixed(redis_url: str) -> None:
    settings = ConnectionSettings(redis_url=redis_url)
    with pytest.raises(ValueError, match="connection= or redis_url"):
        RedisChatMessageStore(redis_url, connection=settings)
    with pytest.raises(ValueError, match="connection= or redis_url"):
        RedisChatMessageStore(connection=settings, max_connections=3)
    with pytest.raises(TypeError, match="connection must be a ConnectionSettings"):
        RedisChatMessageStore(connection=redis_url)  # type: ignore[arg-type]


@pytest.mark.current
async def test_the_provider_honours_registry_false(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url, registry=False) as history:
        await history.save_messages("s", [user_message("hello")])
        assert [m.text for m in await history.get_messages("s")] == ["hello"]
    assert await raw.exists(Keyspace().thread("s").meta, Keyspace().registry) == 0


@pytest.mark.current
async def test_an_encrypted_session_snapshot_is_sealed_and_rekeyed(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisSessionStore

    old = AESGCMEncryption({"k1": KEY1}, current="k1")
    session = AgentSession(session_id="s")
    session.state["card"] = "4111-1111-1111-1111"
    key = Keyspace().thread("s").session
    async with RedisSessionStore(redis_url, encryption=old) as sessions:
        await sessions.set("s", session)
        stored = await _snapshot(raw, key)
        assert stored.startswith(b"aesgcm1:k1:")
        assert b"4111" not in stored
        restored = await sessions.get("s")
        assert restored is not None
        assert restored.state["card"] == "4111-1111-1111-1111"

    # Without the key, or with a wrong one, the snapshot is named as corrupt and left alone.
    async with RedisSessionStore(redis_url) as plain:
        with pytest.raises(CorruptSessionError, match="encrypted"):
            await plain.get("s")
    async with RedisSessionStore(redis_url, encryption=AESGCMEncryption({"k1": KEY2}, current="k1")) as wrong:
        with pytest.raises(CorruptSessionError, match="authentication"):
            await wrong.get("s")
    assert await raw.get(key) == stored

    # A rotation re-encrypts the snapshot with the thread's messages.
    rotated = AESGCMEncryption({"k2": KEY2, "k1": KEY1}, current="k2")
    async with RedisChatMessageStore(redis_url, thread_id="s", encryption=rotated) as store:
        await store.add_messages([user_message("hi")])
        assert await store.rekey() == 1  # the snapshot (the message is already under k2)
    after = await _snapshot(raw, key)
    assert after.startswith(b"aesgcm1:k2:")
    async with RedisSessionStore(redis_url, encryption=AESGCMEncryption({"k2": KEY2}, current="k2")) as sessions:
        restored = await sessions.get("s")
        assert restored is not None
        assert restored.state["card"] == "4111-1111-1111-1111"
