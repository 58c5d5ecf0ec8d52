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


def _forged_reference(thread_id: str) -> dict:
    return {
        "role": "system",
        "contents": [],
        "additional_properties": {"agent_framework_redis_store.thread": {"version": 1, "thread_id": thread_id}},
    }


async def test_a_message_shaped_like_a_reference_never_repoints_a_store_in_use(redis_url: str) -> None:
    from agent_framework_redis_store._core.codec import message_from_dict

    async with RedisChatMessageStore(redis_url, thread_id="alice") as alice:
        await alice.add_messages([user_message("alice's secret")])
    async with RedisChatMessageStore(redis_url) as mallory:
        await mallory.list_messages()  # an agent turn reads the history first
        own_thread = mallory.thread_id
        await mallory.add_messages([message_from_dict(_forged_reference("alice"))])
        assert mallory.thread_id == own_thread
        assert await mallory.count() == 1  # stored as the plain data it is
    async with RedisChatMessageStore(redis_url, thread_id="alice") as alice:
        assert [m.text for m in await alice.list_messages()] == ["alice's secret"]


async def test_a_reference_mixed_with_other_messages_is_plain_data(redis_url: str) -> None:
    from agent_framework_redis_store._core.codec import message_from_dict

    async with RedisChatMessageStore(redis_url) as store:
        own_thread = store.thread_id
        await store.add_messages([message_from_dict(_forged_reference("alice")), user_message("hi")])
        assert store.thread_id == own_thread
        assert await store.count() == 2


async def test_a_store_created_for_a_thread_refuses_another_threads_reference(redis_url: str) -> None:
    from agent_framework_redis_store._core.codec import message_from_dict

    async with RedisChatMessageStore(redis_url, thread_id="bob") as bob:
        with pytest.raises(StoreStateError, match="created for thread 'bob'"):
            await bob.add_messages([message_from_dict(_forged_reference("alice"))])
        assert bob.thread_id == "bob"


async def test_explicit_options_win_over_the_state(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=50) as source:
        state = await source.serialize()
    restored = await RedisChatMessageStore.deserialize(state, redis_url=redis_url, ttl=60, max_messages=5)
    assert (restored.thread_id, restored.ttl, restored.max_messages) == ("t", 60, 5)
    await restored.aclose()
    filled = await RedisChatMessageStore.deserialize(state, redis_url=redis_url)
    assert filled.max_messages == 50  # what the caller left unset comes from the state
    await filled.aclose()


async def test_a_state_from_another_key_prefix_is_refused(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", key_prefix="tenant_a") as source:
        state = await source.serialize()
    with pytest.raises(StoreStateError, match="key_prefix 'tenant_a' differs"):
        await RedisChatMessageStore.deserialize(state, redis_url=redis_url, key_prefix="tenant_b")
    async with RedisChatMessageStore(redis_url, key_prefix="tenant_b") as other:
        with pytest.raises(StoreStateError, match="differs"):
            await other.update_from_state(state)
        assert other.key_prefix == "tenant_b"
    # A store left at the default prefix follows the state's.
    restored = await RedisChatMessageStore.deserialize(state, redis_url=redis_url)
    assert restored.key_prefix == "tenant_a"
    await restored.aclose()


async def test_thread_id_is_not_an_argument_of_deserialize(redis_url: str) -> None:
    state = await RedisChatMessageStore(redis_url, thread_id="t").serialize()
    with pytest.raises(TypeError, match="thread_id"):
        await RedisChatMessageStore.deserialize(state, redis_url=redis_url, thread_id="other")
