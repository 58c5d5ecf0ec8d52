"""What users of agent-framework-redis and langchain-redis rely on, here too (docs/PARITY.md).

The attributes their objects expose (``redis_url``, ``key_prefix``, ``max_messages``, ...),
read-only here and with the password redacted; two ways of connecting given at once are a
``ValueError`` naming both; a missing session id is refused instead of sharing one default
thread; the LangChain history takes ``session_id=``, a sync ``redis.Redis`` and ``len()``.
Real redis-server processes throughout.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio
from redis.credentials import UsernamePasswordCredentialProvider
from redis.sentinel import Sentinel, SentinelConnectionPool

from agent_framework_redis_store import ConnectionSettings, RedisChatMessageStore, RedisStoreFactory, thread_key
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message

# Distinctive halves of a password: neither may show in any attribute, repr or error.
LEFT, RIGHT = "Qx8LeftOfSecret", "Wv3RightOfSecret"
PASSWORD = f"{LEFT}{RIGHT}"


def no_secret(*texts: object) -> bool:
    return not any(LEFT in str(t) or RIGHT in str(t) for t in texts)


@pytest.fixture
def password_server() -> Any:
    with EmbeddedRedis(extra_args=["--requirepass", PASSWORD]) as server:
        yield server


def secret_url(server: EmbeddedRedis, db: int = 0) -> str:
    return f"redis://default:{PASSWORD}@127.0.0.1:{server.port}/{db}"


# -- redis_url and the options as read-only attributes --------------------------------------


async def test_the_store_s_redis_url_is_the_url_connected_to_without_its_credentials(
    password_server: EmbeddedRedis,
) -> None:
    async with RedisChatMessageStore(secret_url(password_server, 3), thread_id="t") as store:
        await store.append(user_message("hello"))  # the redacted URL is only shown: the real one connects
        assert store.redis_url == f"redis://***@127.0.0.1:{password_server.port}/3"
        with pytest.raises(AttributeError):
            store.redis_url = "redis://elsewhere"  # type: ignore[misc]
        assert no_secret(store.redis_url, repr(store), await store.serialize())
    async with RedisStoreFactory(secret_url(password_server)) as factory:
        # A factory's stores share its pool and report its URL, redacted the same way.
        assert factory.redis_url == factory.store("t").redis_url == f"redis://***@127.0.0.1:{password_server.port}/0"
    query = f"redis://127.0.0.1:{password_server.port}/3?password={PASSWORD}"
    async with RedisChatMessageStore(query, thread_id="t") as store:
        assert await store.count() == 1
        assert store.redis_url == f"redis://127.0.0.1:{password_server.port}/3?password=***"


async def test_redis_url_comes_from_the_environment_and_is_none_for_a_host_or_a_caller_s_client(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    async with RedisChatMessageStore(thread_id="t") as store:
        assert store.redis_url == redis_url
    assert RedisChatMessageStore(host="cache.example.net", thread_id="t").redis_url is None
    client = redis.asyncio.Redis.from_url(redis_url)
    assert RedisChatMessageStore(redis_client=client, thread_id="t").redis_url is None
    await client.aclose()


def test_the_store_options_are_read_only_attributes_of_the_store_and_the_factory() -> None:
    for made in (
        RedisChatMessageStore(
            "redis://127.0.0.1:1", thread_id="t", key_prefix="app", max_messages=50, ttl=60, labels={"u": "a"}
        ),
        RedisStoreFactory("redis://127.0.0.1:1", key_prefix="app", max_messages=50, ttl=60, labels={"u": "a"}),
    ):
        assert (made.key_prefix, made.max_messages, made.ttl, made.labels) == ("app", 50, 60.0, {"u": "a"})
        assert (made.registry, made.context_messages, made.context_tokens) == (True, None, None)
        assert (made.compaction, made.compression, made.encryption) == (None, None, None)
        for name in ("key_prefix", "max_messages", "ttl", "labels", "redis_url"):
            with pytest.raises(AttributeError):
                setattr(made, name, None)
        made.labels["u"] = "changed"  # type: ignore[index]  # a copy: the options stay as validated
        assert made.labels == {"u": "a"}


@pytest.mark.current
async def test_the_provider_exposes_redis_url_and_its_options_as_upstream_s_does(
    password_server: EmbeddedRedis,
) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(
        secret_url(password_server), source_id="memory", key_prefix="custom", max_messages=50, context_messages=10
    ) as provider:
        await provider.save_messages("s", [user_message("hello")])
        assert provider.redis_url == f"redis://***@127.0.0.1:{password_server.port}/0"
        assert (provider.source_id, provider.key_prefix, provider.max_messages) == ("memory", "custom", 50)
        assert (provider.ttl, provider.context_messages, provider.registry) == (None, 10, True)
        assert provider.store_for("s").redis_url == provider.redis_url
        with pytest.raises(AttributeError):
            provider.max_messages = 5  # type: ignore[misc]
        assert no_secret(provider.redis_url, repr(provider))
    credentials = UsernamePasswordCredentialProvider("user", "pw")
    assert RedisChatHistoryProvider(credential_provider=credentials, host="cache.example.net").redis_url is None


# -- two ways of connecting at once ---------------------------------------------------------


async def test_two_ways_of_connecting_at_once_are_a_value_error_naming_both(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    credentials = UsernamePasswordCredentialProvider("user", "pw")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"redis_url": redis_url, "redis_client": client}, "redis_client and redis_url are mutually exclusive"),
        ({"redis_client": client, "credential_provider": credentials}, "redis_client and credential_provider"),
        ({"redis_client": client, "host": "h", "port": 1}, "redis_client and host and port are mutually"),
        ({"redis_url": redis_url, "host": "h"}, "redis_url and host are mutually exclusive"),
        (
            {"redis_url": f"redis://:{PASSWORD}@127.0.0.1:1/0", "credential_provider": credentials},
            "redis_url and credential_provider are mutually exclusive",
        ),
        (
            {"redis_url": f"redis://127.0.0.1:1/0?password={PASSWORD}", "credential_provider": credentials},
            "redis_url and credential_provider are mutually exclusive",
        ),
        ({"host": "h", "password": PASSWORD, "credential_provider": credentials}, "password and credential_provider"),
    ]
    for arguments, message in cases:
        with pytest.raises(ValueError, match=message) as raised:
            RedisChatMessageStore(thread_id="t", **arguments)
        assert no_secret(raised.value, raised.value.__cause__, raised.value.__context__)
    with pytest.raises(ValueError, match="redis_url and credential_provider"):
        ConnectionSettings(redis_url=f"redis://u:{PASSWORD}@h:1", credential_provider=credentials)
    # The caller's client was never touched.
    assert await client.ping()
    await client.aclose()


async def test_a_url_without_credentials_beside_a_credential_provider_still_connects(
    password_server: EmbeddedRedis,
) -> None:
    # The URL says where, the provider who (rotating tokens): nothing is given twice.
    credentials = UsernamePasswordCredentialProvider("default", PASSWORD)
    url = f"redis://127.0.0.1:{password_server.port}/0"
    async with RedisChatMessageStore(url, credential_provider=credentials, thread_id="t") as store:
        await store.append(user_message("hello"))
        assert await store.count() == 1
    # An '@' after the host part (here in a socket path) is no user info.
    assert RedisChatMessageStore("unix:///run/a@b.sock?db=0", credential_provider=credentials, thread_id="t")


def test_nowhere_to_connect_keeps_its_wording(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ValueError, match=r"^No Redis to connect to: pass redis_url=, host= or redis_client="):
        RedisChatMessageStore(thread_id="t")


# -- a missing session id on the 1.x provider ----------------------------------------------


@pytest.mark.current
async def test_a_missing_session_id_is_refused_and_stores_nothing(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url) as provider:
        calls = [
            provider.save_messages(None, [user_message("private")]),
            provider.save_messages(None, []),
            provider.get_messages(None),
            provider.clear(None),  # type: ignore[arg-type]
            provider.transcript(None),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(ValueError, match=r"^session_id is required \(got None\).*no shared default thread"):
                await call
        with pytest.raises(ValueError, match="session_id is required"):
            provider.store_for(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="session_id must be a non-empty str"):
            await provider.get_messages("")
    assert await raw.keys("*") == []  # no default thread was written, nothing else either


# -- LangChain ---------------------------------------------------------------------------


def test_a_langchain_history_needs_a_session_id(redis_url: str) -> None:
    from agent_framework_redis_store.langchain import RedisChatMessageHistory

    with pytest.raises(ValueError, match=r"session_id is required \(got None\)"):
        RedisChatMessageHistory(redis_url=redis_url)
    with pytest.raises(ValueError, match=r"session_id is required \(got None\)"):
        RedisChatMessageHistory(session_id=None, redis_url=redis_url)
    with pytest.raises(ValueError, match="session_id must be a non-empty str"):
        RedisChatMessageHistory(session_id="", redis_url=redis_url)
    with pytest.raises(ValueError, match="thread_id and session_id name the same thing"):
        RedisChatMessageHistory("a", redis_url, session_id="b")
    with (
        RedisChatMessageHistory.factory(redis_url) as factory,
        pytest.raises(ValueError, match=r"session_id is required \(got None\)"),
    ):
        factory(None)  # type: ignore[arg-type]
    # langchain-redis's keyword names the same thread as the positional thread_id.
    with RedisChatMessageHistory(session_id="s1", redis_url=redis_url) as history:
        assert (history.session_id, history.id, history.thread_id) == ("s1", "s1", "s1")
        history.add_user_message("hi")
    with RedisChatMessageHistory("s1", redis_url) as history:
        assert [m.content for m in history.messages] == ["hi"]


def test_len_counts_the_stored_messages_and_a_history_is_always_truthy(redis_url: str) -> None:
    from agent_framework_redis_store.langchain import RedisChatMessageHistory

    with RedisChatMessageHistory(session_id="s", redis_url=redis_url, key_prefix="chat", ttl=60) as history:
        assert len(history) == 0
        assert history  # an empty history is still an object to write to
        history.add_user_message("one")
        history.add_ai_message("two")
        assert len(history) == 2
        assert (history.key_prefix, history.ttl, history.redis_url) == ("chat", 60.0, redis_url)
        history.clear()
        assert len(history) == 0


async def test_len_works_beside_a_running_event_loop(redis_url: str) -> None:
    from agent_framework_redis_store.langchain import RedisChatMessageHistory

    async with RedisChatMessageHistory(session_id="s", redis_url=redis_url) as history:
        await history.aadd_messages([user_message_lc("one")])
        assert len(history) == 1


def user_message_lc(text: str) -> Any:
    from langchain_core.messages import HumanMessage

    return HumanMessage(text)


def test_ttl_zero_is_refused_with_what_to_pass(redis_url: str) -> None:
    from agent_framework_redis_store.langchain import RedisChatMessageHistory

    with pytest.raises(ValueError, match=r"ttl must be a positive number of seconds, got 0: .*pass ttl=None"):
        RedisChatMessageHistory(session_id="s", redis_url=redis_url, ttl=0)
    with pytest.raises(ValueError, match="ttl must be a positive number of seconds"):
        RedisChatMessageHistory.factory(redis_url, ttl=-1)


async def test_a_sync_redis_client_serves_every_method_and_stays_the_caller_s(password_server: EmbeddedRedis) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from agent_framework_redis_store.langchain import RedisChatMessageHistory

    client = redis.Redis.from_url(secret_url(password_server, 2), decode_responses=True)
    history = RedisChatMessageHistory(session_id="s", redis_client=client, key_prefix="lc")
    history.add_message(HumanMessage("hello"))  # sync, no event loop involved
    await history.aadd_messages([AIMessage("hi")])
    assert [m.content for m in history.messages] == ["hello", "hi"]
    assert [m.content for m in await history.aget_messages()] == ["hello", "hi"]
    assert len(history) == 2
    assert history.redis_url is None  # the caller gave a client, not a URL
    assert no_secret(repr(history))
    await history.aclose()
    # Written where the client points (db 2, the store's layout), and the client is still the caller's.
    assert client.llen(thread_key("lc", "s")) == 2
    assert client.ping()
    client.close()


def test_a_sync_client_s_settings_that_cannot_be_carried_over_are_refused_by_name(redis_url: str) -> None:
    from agent_framework_redis_store.langchain import RedisChatMessageHistory

    tls = redis.Redis(host="cache.example.net", port=6380, ssl=True, ssl_ca_certs="/etc/ca.pem")
    with pytest.raises(ValueError, match=r"redis_client's TLS settings \(ssl_ca_certs\).*pass redis_url"):
        RedisChatMessageHistory(session_id="s", redis_client=tls)
    sentinel_like = redis.Redis(connection_pool=SentinelConnectionPool("m", Sentinel([])))
    with pytest.raises(TypeError, match="for Sentinel or Cluster pass redis_url"):
        RedisChatMessageHistory(session_id="s", redis_client=sentinel_like)
    with pytest.raises(ValueError, match="redis_client and redis_url are mutually exclusive"):
        RedisChatMessageHistory(session_id="s", redis_url=redis_url, redis_client=redis.Redis.from_url(redis_url))
    with pytest.raises(ValueError, match="redis_client and socket_timeout are mutually exclusive"):
        RedisChatMessageHistory(session_id="s", redis_client=redis.Redis.from_url(redis_url), socket_timeout=1)
    with pytest.raises(TypeError, match=r"cluster=True needs a redis\.asyncio\.RedisCluster"):
        RedisChatMessageHistory(session_id="s", redis_client=redis.Redis.from_url(redis_url), cluster=True)


def test_a_sync_client_on_a_unix_socket_is_followed(tmp_path: Any) -> None:
    from langchain_core.messages import HumanMessage

    from agent_framework_redis_store.langchain import RedisChatMessageHistory

    socket = tmp_path / "r.sock"
    with EmbeddedRedis(extra_args=["--unixsocket", str(socket), "--unixsocketperm", "700"]) as server:
        client = redis.Redis(unix_socket_path=str(socket), db=1)
        with RedisChatMessageHistory(session_id="s", redis_client=client) as history:
            history.add_message(HumanMessage("over the socket"))
            assert len(history) == 1
        with redis.Redis(port=server.port, db=1) as tcp:
            assert tcp.llen(thread_key("chat_messages", "s")) == 1
        client.close()
