"""Property-based: any thread id and any payload round-trip exactly, and ids never collide."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, thread_key
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store.testing import EmbeddedRedis

thread_ids = st.text(min_size=1, max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=40,
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _message(text: str, properties: dict[str, Any] | None = None) -> Any:
    data: dict[str, Any] = {"role": "user", "contents": [{"type": "text", "text": text}]}
    if properties is not None:
        data["additional_properties"] = properties
    return message_from_dict(data)


async def _round_trip(url: str, thread_id: str, messages: list[Any]) -> list[Any]:
    async with RedisChatMessageStore(url, thread_id=thread_id) as store:
        await store.clear()
        await store.add_messages(messages)
        loaded = await store.list_messages()
        await store.clear()
    return loaded


@SETTINGS
@given(st.lists(thread_ids, min_size=2, max_size=6, unique=True), st.sampled_from(["chat_messages", "a:b", "x"]))
def test_distinct_thread_ids_never_share_keys(ids: list[str], prefix: str) -> None:
    keys = [thread_key(prefix, i) for i in ids]
    assert len(set(keys)) == len(ids)
    for thread_id, key in zip(ids, keys, strict=True):
        assert Keyspace(prefix).thread_id_of(key) == thread_id
        assert key_slot(key.encode()) == key_slot(Keyspace(prefix).thread(thread_id).batches.encode())
        assert not set(keys) & {Keyspace(prefix).thread(other).batches for other in ids}


@SETTINGS
@given(thread_id=thread_ids, texts=st.lists(st.text(), min_size=1, max_size=4), properties=json_values)
def test_any_thread_and_payload_round_trip(
    redis_server: EmbeddedRedis, thread_id: str, texts: list[str], properties: Any
) -> None:
    messages = [_message(text, {"value": properties}) for text in texts]
    loaded = asyncio.run(_round_trip(redis_server.url, thread_id, messages))
    assert [m.to_dict() for m in loaded] == [m.to_dict() for m in messages]
    assert [m.additional_properties["value"] for m in loaded] == [properties] * len(texts)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_one_megabyte_bodies_with_control_characters(redis_server: EmbeddedRedis, seed: int) -> None:
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0, 0x20)] + list('abc xyz"\\/{}:') + ["é", "日", "🧵", "\u2028", "\ufeff"]
    body = "".join(rng.choices(alphabet, k=1_000_000))
    [loaded] = asyncio.run(_round_trip(redis_server.url, f"big-{seed}", [_message(body)]))
    assert loaded.text == body


def test_deeply_nested_additional_properties(redis_server: EmbeddedRedis) -> None:
    deep: Any = "bottom"
    for depth in range(200):
        deep = {f"level{depth}": [deep]}
    [loaded] = asyncio.run(_round_trip(redis_server.url, "deep", [_message("deep", {"tree": deep})]))
    assert loaded.additional_properties["tree"] == deep
