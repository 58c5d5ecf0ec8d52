"""A retried append whose first attempt did reach the server is not stored twice."""

from __future__ import annotations

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent_framework_redis_store import RedisChatMessageStore, RedisUnavailableError
from agent_framework_redis_store.testing import EmbeddedRedis

from ..scripted import user_message


class ResumeServerOnRetry(AbstractBackoff):
    """A real redis-py backoff that, before the first retry, wakes the paused server."""

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server
        self.retries = 0

    def __deepcopy__(self, memo: dict) -> ResumeServerOnRetry:
        return self  # redis-py copies the retry policy per connection; keep one shared counter

    def reset(self) -> None:
        pass

    def compute(self, failures: int) -> float:
        self.retries += 1
        self.server.resume()
        return 0.0


async def _evalsha_calls(client: redis.asyncio.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_reply_lost_to_a_timeout_then_retried_is_stored_once(own_server: EmbeddedRedis) -> None:
    backoff = ResumeServerOnRetry(own_server)
    retry = Retry(backoff, retries=3, supported_errors=(RedisConnectionError, RedisTimeoutError))
    inspector = redis.asyncio.Redis.from_url(own_server.url)
    async with RedisChatMessageStore(own_server.url, thread_id="t", retry=retry, socket_timeout=0.5) as store:
        await store.add_messages([user_message("warm up: connection open, script loaded")])
        calls_before = await _evalsha_calls(inspector)

        own_server.pause()  # the next append reaches the socket, but its reply never comes in time
        await store.add_messages([user_message("the turn")])

        assert backoff.retries >= 1  # the first attempt timed out and redis-py retried
        # Both attempts ran on the server (the first from its socket buffer once resumed) ...
        assert await _evalsha_calls(inspector) - calls_before == 2
        # ... and the batch is there exactly once.
        assert [m.text for m in await store.list_messages()] == [
            "warm up: connection open, script loaded",
            "the turn",
        ]
    await inspector.aclose()


class CountingBackoff(AbstractBackoff):
    def __init__(self) -> None:
        self.computed = 0

    def __deepcopy__(self, memo: dict) -> CountingBackoff:
        return self

    def reset(self) -> None:
        pass

    def compute(self, failures: int) -> float:
        self.computed += 1
        return 0.0


async def test_the_callers_retry_policy_is_the_one_applied() -> None:
    server = EmbeddedRedis().start()
    url = server.url
    server.stop()  # nothing listens there any more
    backoff = CountingBackoff()
    retry = Retry(backoff, retries=2, supported_errors=(RedisConnectionError, RedisTimeoutError))
    store = RedisChatMessageStore(url, retry=retry)
    with pytest.raises(RedisUnavailableError, match="unreachable"):
        await store.add_messages([user_message("x")])
    assert backoff.computed == 2
    await store.aclose()
