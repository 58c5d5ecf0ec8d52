"""Set-up mistakes fail fast and say what they are: TLS to a plain server, no password, a database out of range.

Each against a redis-server of the test's own. The messages name the server by its redacted URL
and never carry a fragment of a password.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from agent_framework_redis_store import RedisChatMessageStore, RedisStoreError, RedisUnavailableError
from agent_framework_redis_store.testing import EmbeddedRedis

PASSWORD = "pw-7d1f9c"


@pytest.fixture(scope="module")
def plain_server() -> Iterator[EmbeddedRedis]:
    """A Redis without TLS."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="module")
def password_server() -> Iterator[EmbeddedRedis]:
    """A Redis that requires a password."""
    with EmbeddedRedis(extra_args=["--requirepass", PASSWORD]) as server:
        yield server


async def test_tls_url_for_a_plain_server_fails_within_seconds_naming_tls(plain_server: EmbeddedRedis) -> None:
    # The default retry policy: without the check, every retry waited out the 5 s connect timeout
    # (about 21 s) and ended as "unreachable".
    url = f"rediss://127.0.0.1:{plain_server.port}/0"
    async with RedisChatMessageStore(url, thread_id="t") as store:
        started = time.monotonic()
        with pytest.raises(RedisUnavailableError) as caught:
            await store.list_messages()
        elapsed = time.monotonic() - started
    # Typically 0.6-1.6 s (a 0.5 s wait for the handshake, then one plain-text probe). The bound tells it
    # from the 21 s of retries it replaced with room for a loaded 2-core machine.
    assert elapsed < 10, f"took {elapsed:.1f} s"
    message = str(caught.value)
    assert "the server did not answer the TLS handshake (is it serving TLS?)" in message
    assert f"Redis at rediss://127.0.0.1:{plain_server.port}/0" in message
    assert "unreachable" not in message


async def test_tls_url_for_a_plain_server_with_a_password_names_tls_and_hides_the_password(
    password_server: EmbeddedRedis,
) -> None:
    url = f"rediss://:{PASSWORD}@127.0.0.1:{password_server.port}/0"
    async with RedisChatMessageStore(url, thread_id="t") as store:
        with pytest.raises(RedisUnavailableError, match=r"is it serving TLS\?") as caught:
            await store.count()
    assert PASSWORD not in str(caught.value)
    assert PASSWORD[:4] not in str(caught.value)


async def test_no_password_for_a_server_that_requires_one(password_server: EmbeddedRedis) -> None:
    async with RedisChatMessageStore(f"redis://127.0.0.1:{password_server.port}/0", thread_id="t") as store:
        with pytest.raises(RedisStoreError) as caught:
            await store.list_messages()
    message = str(caught.value)
    assert "the server requires a password (AUTH)" in message
    assert "rejected the credentials" not in message


async def test_a_wrong_password_is_still_a_rejected_credential(password_server: EmbeddedRedis) -> None:
    url = f"redis://:wrong-{PASSWORD}@127.0.0.1:{password_server.port}/0"
    async with RedisChatMessageStore(url, thread_id="t") as store:
        with pytest.raises(RedisStoreError, match="rejected the credentials") as caught:
            await store.list_messages()
    assert PASSWORD not in str(caught.value)
    assert "requires a password" not in str(caught.value)


async def test_a_database_out_of_range_names_the_url_and_the_count(password_server: EmbeddedRedis) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{password_server.port}/99"
    async with RedisChatMessageStore(url, thread_id="t") as store:
        with pytest.raises(RedisStoreError) as caught:
            await store.list_messages()
    message = str(caught.value)
    assert f"Redis at redis://***@127.0.0.1:{password_server.port}/99 has no database 99" in message
    assert "it has 16 (0 to 15)" in message
    assert PASSWORD not in message


async def test_a_database_in_range_still_works(plain_server: EmbeddedRedis) -> None:
    async with RedisChatMessageStore(f"redis://127.0.0.1:{plain_server.port}/15", thread_id="t") as store:
        assert await store.count() == 0
