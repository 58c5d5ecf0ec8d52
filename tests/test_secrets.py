"""No part of a URL's credentials reaches a message, a log, a repr, serialized state or a host name.

A password written into ``redis_url`` unencoded, with a character that ends the URL's host part
early ('/', '?', '#') or another '@', is ambiguous: part of it would become the host (sent to
DNS), the port or the database, and redis-py's parse errors quote it. Such a URL is refused at
construction, before any connection, with an error that says how to encode it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
import redis

from agent_framework_redis_store import (
    ConnectionSettings,
    RedisChatMessageStore,
    RedisStoreError,
    RedisThreadRegistry,
    redact_url,
)
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message

# Distinctive halves: neither may show anywhere, whatever the parser made of the URL.
LEFT, RIGHT = "Zq9LeftHalfOfPw", "Zk7RightHalfOfPw"
# Each character that has a meaning in a URL. ':' separates username from password only once,
# so a password holding one is unambiguous; the others must be percent-encoded.
RESERVED = ["/", "@", "#", "?", ":", "%", "[", "]"]
AMBIGUOUS = [c for c in RESERVED if c != ":"]


def _password(char: str) -> str:
    return f"{LEFT}{char}{RIGHT}"


def _urls(char: str, port: int = 6390) -> list[str]:
    secret = _password(char)
    return [
        f"redis://:{secret}@127.0.0.1:{port}/0",
        f"redis://default:{secret}@127.0.0.1:{port}/0",
        f"rediss://{secret}:pw@redis.example:{port}",  # in the username
        f"unix://:{secret}@/run/redis.sock?db=0",
    ]


def _leaks(*texts: object) -> list[str]:
    return [str(t) for t in texts if LEFT in str(t) or RIGHT in str(t)]


def _constructors() -> dict[str, Callable[[str], object]]:
    from agent_framework_redis_store import GENERATION

    made: dict[str, Callable[[str], object]] = {
        "ConnectionSettings": lambda url: ConnectionSettings(redis_url=url),
        "store": lambda url: RedisChatMessageStore(url, thread_id="t"),
        "store (cluster)": lambda url: RedisChatMessageStore(url, thread_id="t", cluster=True),
        "factory": lambda url: RedisChatMessageStore.factory(url),
        "registry": lambda url: RedisThreadRegistry(url),
    }
    if GENERATION == "current":
        from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore

        made["history provider"] = lambda url: RedisChatHistoryProvider(url)
        made["session store"] = lambda url: RedisSessionStore(url)
    return made


@pytest.mark.parametrize("char", AMBIGUOUS)
def test_an_ambiguous_password_in_redis_url_is_refused_at_construction_without_a_trace_of_it(
    char: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for url in _urls(char):
        for name, construct in _constructors().items():
            # Constructors are synchronous and connect lazily: failing here, nothing was sent anywhere.
            with pytest.raises(ValueError, match="percent-encode") as caught:
                construct(url)
            err = caught.value
            assert "quote(password, safe='')" in str(err), name
            assert not _leaks(str(err), repr(err), repr(err.__cause__), repr(err.__context__)), (name, url)
        assert not _leaks(redact_url(url)), url
    assert not _leaks(caplog.text)


@pytest.mark.parametrize("char", AMBIGUOUS)
def test_an_ambiguous_password_in_the_environment_is_refused_the_same_way(
    char: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", _urls(char)[0])
    with pytest.raises(ValueError, match=r"REDIS_URL .*percent-encode") as caught:
        RedisChatMessageStore(thread_id="t")
    assert not _leaks(str(caught.value), repr(caught.value.__cause__), repr(caught.value.__context__))
    settings = ConnectionSettings()
    assert not _leaks(settings.display_url, repr(settings))


def test_a_lone_surrogate_in_a_credential_is_refused_without_quoting_it() -> None:
    for kwargs in ({"password": LEFT + "\ud800"}, {"username": LEFT + "\udc80"}, {"host": LEFT + "\ud800"}):
        with pytest.raises(ValueError, match="lone surrogate") as caught:
            ConnectionSettings(**kwargs)  # type: ignore[arg-type]
        assert next(iter(kwargs)) in str(caught.value)
        assert not _leaks(str(caught.value))
    with pytest.raises(ValueError, match="redis_url must be valid Unicode") as caught:
        RedisChatMessageStore(f"redis://:{LEFT}\ud800@127.0.0.1:1/0", thread_id="t")
    assert not _leaks(str(caught.value))


# -- the same passwords, percent-encoded, work ----------------------------------------------------


@pytest.fixture(scope="module")
def acl_server() -> Iterator[EmbeddedRedis]:
    """A server with one ACL user per reserved character, whose password holds that character."""
    server = EmbeddedRedis().start()
    try:
        with redis.Redis(port=server.port) as admin:
            for n, char in enumerate(RESERVED):
                admin.acl_setuser(
                    f"user{n}", enabled=True, passwords=[f"+{_password(char)}"], keys="*", commands=["+@all"]
                )
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("char", RESERVED)
async def test_a_percent_encoded_password_with_a_reserved_character_connects_and_never_shows(
    char: str, acl_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = f"user{RESERVED.index(char)}"
    url = f"redis://{user}:{quote(_password(char), safe='')}@127.0.0.1:{acl_server.port}/0"
    async with RedisChatMessageStore(url, thread_id=f"t{RESERVED.index(char)}") as store:
        await store.add_messages([user_message("hello")])
        assert [m.text for m in await store.list_messages()] == ["hello"]
        shown = [repr(store), str(await store.serialize()), redact_url(url)]
    wrong = url.replace(quote(RIGHT, safe=""), "wrong")
    async with RedisChatMessageStore(wrong, thread_id="t") as store:
        with pytest.raises(RedisStoreError, match="credentials") as caught:
            await store.list_messages()
        assert await store.ping() is False
        shown += [repr(store), str(caught.value), repr(caught.value.__cause__), repr(caught.value.__context__)]
    assert not _leaks(*shown, caplog.text)


@pytest.mark.parametrize("char", [":"])
def test_an_unencoded_colon_in_a_password_is_unambiguous_and_accepted(char: str) -> None:
    for url in _urls(char):
        settings = ConnectionSettings(redis_url=url)
        assert not _leaks(settings.display_url, repr(settings))
