"""Serialized state: small thread metadata that resumes the same thread, and rejects tampering."""

from __future__ import annotations

import json

import pytest
import redis.asyncio

from agent_framework_redis_store import RedisChatMessageStore, StoreStateError

from .scripted import user_message


async def test_state_is_metadata_only_and_json(redis_url: str) -> None:
    url = redis_url.replace("redis://", "redis://bob:hunter2@")
    store = RedisChatMessageStore(url, thread_id="t", max_messages=50, ttl=3600)
    state = await store.serialize()
    text = json.dumps(state)
    assert state["thread_id"] == "t"
    assert state["max_messages"] == 50
    assert state["ttl"] == 3600
    for secret in ("hunter2", "bob", "redis://", str(redis_url.split(":")[-1].split("/")[0])):
        assert secret not in text
    assert len(text) < 1_000
    await store.aclose()


async def test_state_never_carries_message_bodies(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("a private message body")])
        assert "a private message body" not in json.dumps(await store.serialize())


async def test_deserialize_resumes_the_same_thread(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=5, ttl=60) as store:
        await store.add_messages([user_message("before suspend")])
        state = json.loads(json.dumps(await store.serialize()))
    restored = await RedisChatMessageStore.deserialize(state, redis_url=redis_url)
    assert (restored.thread_id, restored.max_messages, restored.ttl) == ("t", 5, 60)
    await restored.add_messages([user_message("after resume")])
    assert [m.text for m in await restored.list_messages()] == ["before suspend", "after resume"]
    await restored.aclose()


async def test_deserialize_onto_a_callers_client(redis_url: str, raw: redis.asyncio.Redis) -> None:
    state = await RedisChatMessageStore(redis_client=raw, thread_id="t").serialize()
    restored = await RedisChatMessageStore.deserialize(state, redis_client=raw)
    await restored.aclose()
    assert restored.thread_id == "t"
    assert await raw.ping()


async def test_update_from_state_retargets_an_existing_store(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="original") as source:
        await source.add_messages([user_message("hello")])
        state = await source.serialize()
    async with RedisChatMessageStore(redis_url) as store:
        await store.update_from_state(state)
        assert store.thread_id == "original"
        assert [m.text for m in await store.list_messages()] == ["hello"]


async def test_in_memory_state_is_imported_into_redis(redis_url: str) -> None:
    # A state from the framework's in-memory store carries the messages themselves.
    state = {"type": "chat_message_store_state", "messages": [user_message("migrated").to_dict()]}
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.update_from_state(state)
        assert [m.text for m in await store.list_messages()] == ["migrated"]


async def test_reference_travels_as_a_message_when_only_messages_survive(redis_url: str) -> None:
    # The legacy AgentThreadState keeps only `messages` of a store state.
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=7) as store:
        state = await store.serialize()
    stripped = {"type": "chat_message_store_state", "messages": state["messages"]}
    restored = await RedisChatMessageStore.deserialize(stripped, redis_url=redis_url)
    assert (restored.thread_id, restored.max_messages) == ("t", 7)
    assert await restored.count() == 0  # the reference itself is never stored
    await restored.aclose()


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda s: s.update(type="something_else"), r"\['type'\]"),
        (lambda s: s.update(thread_id=42), r"\['thread_id'\]"),
        (lambda s: s.update(thread_id=""), r"\['thread_id'\]"),
        (lambda s: s.update(key_prefix="x{y}"), r"\['key_prefix'\]"),
        (lambda s: s.update(max_messages=-3), r"\['max_messages'\]"),
        (lambda s: s.update(ttl="forever"), r"\['ttl'\]"),
        (lambda s: s.update(version=99), r"\['version'\]"),
        (lambda s: s.update(messages="not a list"), r"\['messages'\]"),
        (lambda s: s.update(messages=[42]), r"\['messages'\]\[0\]"),
        (lambda s: s.update(messages=[{"role": None}]), r"\['messages'\]\[0\]"),
        (lambda s: s.update(thread_id="someone_else"), "altered"),
    ],
)
async def test_tampered_state_is_rejected_naming_the_key(redis_url: str, mutate, names: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("keep me")])
        state = json.loads(json.dumps(await store.serialize()))
        mutate(state)
        with pytest.raises(StoreStateError, match=names):
            await RedisChatMessageStore.deserialize(state, redis_url=redis_url)
        with pytest.raises(StoreStateError, match=names):
            await store.update_from_state(state)
        # Nothing was lost and the store still points at its thread.
        assert store.thread_id == "t"
        assert [m.text for m in await store.list_messages()] == ["keep me"]


async def test_state_that_is_not_a_dict_is_rejected(redis_url: str) -> None:
    with pytest.raises(StoreStateError, match="serialized_store_state must be a dict"):
        await RedisChatMessageStore.deserialize(["not", "a", "dict"], redis_url=redis_url)  # type: ignore[arg-type]
