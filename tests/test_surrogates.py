"""A lone surrogate (text that cannot be UTF-8) in a str that reaches Redis is refused where it is given.

Redis takes UTF-8 only: such a label, key prefix or id used to be accepted and to fail on the
first write with a bare UnicodeEncodeError. The error names the option (and the label).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agent_framework_redis_store import (
    GENERATION,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    ThreadRecord,
    ThreadRecordError,
)

from .scripted import user_message

LONE = "\ud83d"  # half of a surrogate pair: an emoji cut in two by UTF-16 slicing


def _constructors(redis_url: str) -> dict[str, Callable[..., object]]:
    made: dict[str, Callable[..., object]] = {
        "store": lambda **o: RedisChatMessageStore(redis_url, thread_id="t", **o),
        "factory": lambda **o: RedisChatMessageStore.factory(redis_url, **o),
    }
    if GENERATION == "current":
        from agent_framework_redis_store import RedisChatHistoryProvider

        made["history provider"] = lambda **o: RedisChatHistoryProvider(redis_url, **o)
    return made


@pytest.mark.parametrize(
    ("labels", "named"),
    [({"user": f"al{LONE}ice"}, "labels['user']"), ({f"us{LONE}er": "alice"}, "labels key 'us\\ud83der'")],
)
async def test_a_label_with_a_lone_surrogate_is_refused_at_construction(
    redis_url: str, labels: dict[str, str], named: str
) -> None:
    for name, construct in _constructors(redis_url).items():
        with pytest.raises(ValueError, match="lone surrogate") as caught:
            construct(labels=labels)
        assert named in str(caught.value), name
    async with RedisThreadRegistry(redis_url) as registry:
        with pytest.raises(ValueError, match="lone surrogate"):
            await registry.list_threads(labels=labels)
        with pytest.raises(ValueError, match="lone surrogate"):
            await registry.erase(labels=labels)
        assert await registry.count() == 0
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("nothing else is affected")])


async def test_a_key_prefix_with_a_lone_surrogate_is_refused_at_construction(redis_url: str) -> None:
    prefix = f"app{LONE}"
    for name, construct in _constructors(redis_url).items():
        with pytest.raises(ValueError, match="key_prefix must be valid Unicode"):
            construct(key_prefix=prefix)
        assert name
    with pytest.raises(ValueError, match="key_prefix must be valid Unicode"):
        RedisThreadRegistry(redis_url, key_prefix=prefix)
    with pytest.raises(ValueError, match="key_prefix must be valid Unicode"):
        Keyspace(prefix)
    if GENERATION == "current":
        from agent_framework_redis_store import RedisSessionStore

        with pytest.raises(ValueError, match="key_prefix must be valid Unicode"):
            RedisSessionStore(redis_url, key_prefix=prefix)


def test_an_exported_record_with_a_lone_surrogate_in_a_label_is_a_record_error() -> None:
    line = json.dumps({"thread_id": "t", "labels": {"user": f"a{LONE}"}, "messages": [{"role": "user"}]})
    with pytest.raises(ThreadRecordError, match=r"labels\['user'\] must be valid Unicode"):
        ThreadRecord.from_json(line)
