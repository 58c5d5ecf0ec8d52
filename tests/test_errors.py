"""Bad input gets a clear error naming the argument or key, and loses nothing else."""

from __future__ import annotations

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    CorruptMessageError,
    RedisChatMessageStore,
    RedisStoreError,
    RedisUnavailableError,
    default_retry,
    redact_url,
)
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"thread_id": ""}, ValueError, "thread_id"),
        ({"thread_id": 42}, TypeError, "thread_id"),
        ({"thread_id": "bad\ud800"}, ValueError, "thread_id"),
        ({"max_messages": -1}, ValueError, "max_messages"),
        ({"max_messages": 0}, ValueError, "max_messages"),
        ({"max_messages": "10"}, TypeError, "max_messages"),
        ({"max_messages": True}, TypeError, "max_messages"),
        ({"ttl": 0}, ValueError, "ttl"),
        ({"ttl": -5}, ValueError, "ttl"),
        ({"ttl": "1h"}, TypeError, "ttl"),
        ({"key_prefix": ""}, ValueError, "key_prefix"),
        ({"key_prefix": "app{1}"}, ValueError, "key_prefix"),
        ({"redis_url": "http://localhost:6379"}, ValueError, "redis_url"),
        ({"redis_url": ""}, ValueError, "redis_url"),
        ({"port": 70000, "host": "localhost"}, ValueError, "port"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs: dict, error: type[Exception], names: str) -> None:
    kwargs = {"redis_url": "redis://127.0.0.1:1", **kwargs}
    with pytest.raises(error, match=names):
        RedisChatMessageStore(**kwargs)


async def test_url_and_client_together_are_rejected(raw: redis.asyncio.Redis) -> None:
    with pytest.raises(ValueError, match="redis_client"):
        RedisChatMessageStore("redis://127.0.0.1:1", redis_client=raw)


async def test_invalid_last_is_rejected(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url) as store:
        with pytest.raises(ValueError, match="last"):
            await store.list_messages(last=0)


async def test_a_single_message_instead_of_a_list_is_rejected(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url) as store:
        with pytest.raises(TypeError, match="messages must be a sequence"):
            await store.add_messages(user_message("x"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "garbage",
    [
        b"not json",
        b"[1, 2]",
        b'{"no_role": true}',
        b'{"role": null}',
        b'{"role": "user", "contents": 5}',
        b'{"role": "user", "contents": [5]}',
    ],
)
async def test_corrupt_entry_names_key_and_index_and_touches_nothing(
    redis_url: str, raw: redis.asyncio.Redis, garbage: bytes
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("good 0"), user_message("good 1")])
        await raw.rpush(store.redis_key, garbage)
        await store.add_messages([user_message("good 3")])
        with pytest.raises(CorruptMessageError) as caught:
            await store.list_messages()
        assert caught.value.key == "chat_messages:{t}"
        assert caught.value.index == 2
        assert "chat_messages:{t}" in str(caught.value)
        assert "index 2" in str(caught.value)
        with pytest.raises(CorruptMessageError) as windowed:
            await store.list_messages(last=2)
        assert windowed.value.index == -2  # LINDEX chat_messages:{t} -2 shows it
        assert await raw.lindex(store.redis_key, windowed.value.index) == garbage
        # Nothing else was touched, and the newest message still reads.
        assert await raw.llen(store.redis_key) == 4
        assert [m.text for m in await store.list_messages(last=1)] == ["good 3"]


async def test_a_key_of_another_type_is_named(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await raw.set(store.redis_key, "a string, not a list")
        with pytest.raises(RedisStoreError, match=r"chat_messages:\{t\}"):
            await store.list_messages()
        with pytest.raises(RedisStoreError, match=r"chat_messages:\{t\}"):
            await store.add_messages([user_message("x")])
        assert await raw.get(store.redis_key) == b"a string, not a list"


@pytest.fixture
def dead_url() -> str:
    """A URL with credentials on a port where nothing listens any more."""
    server = EmbeddedRedis().start()
    port = server.port
    server.stop()
    return f"redis://alice:s3cret-pw@127.0.0.1:{port}/0"


async def test_unreachable_server_raises_after_retries_without_leaking_credentials(dead_url: str) -> None:
    store = RedisChatMessageStore(dead_url, thread_id="t", retry=default_retry())
    with pytest.raises(RedisUnavailableError) as caught:
        await store.add_messages([user_message("x")])
    message = str(caught.value)
    assert "unreachable" in message
    assert "127.0.0.1" in message
    assert "s3cret-pw" not in message
    assert "alice" not in message
    assert "s3cret-pw" not in repr(store)
    assert "alice" not in repr(store)
    with pytest.raises(RedisUnavailableError):
        await store.list_messages()
    assert await store.ping() is False
    await store.aclose()


async def test_wrong_password_is_reported_as_credentials_problem() -> None:
    with EmbeddedRedis(extra_args=["--requirepass", "right-pw"]) as server:
        store = RedisChatMessageStore(f"redis://:wrong-pw@127.0.0.1:{server.port}/0")
        with pytest.raises(RedisStoreError, match="credentials") as caught:
            await store.list_messages()
        assert "wrong-pw" not in str(caught.value)
        assert await store.ping() is False
        await store.aclose()
        good = RedisChatMessageStore(f"redis://:right-pw@127.0.0.1:{server.port}/0")
        assert await good.ping() is True
        await good.aclose()


async def test_recovers_when_the_server_comes_back(own_server: EmbeddedRedis) -> None:
    async with RedisChatMessageStore(own_server.url, thread_id="t") as store:
        await store.add_messages([user_message("before")])
        own_server.kill()
        with pytest.raises(RedisUnavailableError):
            await store.add_messages([user_message("lost: never acknowledged")])
        own_server.start()
        await store.add_messages([user_message("after")])
        # appendfsync always: the acknowledged message survived kill -9.
        assert [m.text for m in await store.list_messages()] == ["before", "after"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://alice:pw@host:6379/0", "redis://***@host:6379/0"),
        ("redis://:pw@host:not-a-port/0", "redis://***@host:not-a-port/0"),
        ("rediss://u:pw@[::1]:6380", "rediss://***@[::1]:6380"),
        ("redis://host:6379/0?password=pw&ssl_certfile=/c.pem", "redis://host:6379/0?password=***&ssl_certfile=/c.pem"),
        ("redis://host:6379", "redis://host:6379"),
        # A password with an unencoded "#", "/" or "?" ends the URL's host part early for urlsplit.
        ("redis://default:1234#Secret@redis.internal:6379", "redis://***@redis.internal:6379"),
        ("redis://user:pa/ss@host/0", "redis://***@host/0"),
        ("redis://user:a?b@host", "redis://***@host"),
        ("unix:///run/redis.sock?db=0&password=pw", "unix:///run/redis.sock?db=0&password=***"),
        # The username too, wherever it is written (the redacted redis_url attributes promise it).
        ("redis://host/0?username=alice&password=pw", "redis://host/0?username=***&password=***"),
    ],
)
def test_redact_url_hides_credentials_even_in_malformed_urls(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", ["redis://user:paQ7/ssZ9@127.0.0.1:1/0", "redis://default:1234#Secret@127.0.0.1:1"])
async def test_no_part_of_a_password_shows_in_repr_or_errors(url: str) -> None:
    secret = ("paQ7", "ssZ9", "Secret") if "paQ7/ssZ9" in url else ("Secret", "1234#")
    shown: list[str] = []
    try:  # a URL redis-py cannot parse fails at once; one it can, on the first command
        store = RedisChatMessageStore(url, thread_id="t")
        shown.append(repr(store))
        async with store:
            await store.list_messages()
    except Exception as error:
        chain: BaseException | None = error
        while chain is not None:
            shown.append(f"{type(chain).__name__}: {chain}")
            chain = chain.__cause__ or chain.__context__
    assert any("Error" in text for text in shown), shown
    assert not [text for text in shown if any(part in text for part in secret)], shown


async def test_a_pathologically_nested_entry_is_reported_as_corrupt(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await raw.rpush(store.redis_key, b"[" * 100_000)
        with pytest.raises(CorruptMessageError) as caught:
            await store.list_messages()
        assert caught.value.index == 0
