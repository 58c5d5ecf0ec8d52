"""``add_new_messages``: one round trip that stores only what a thread does not already end with.

Generation-neutral: it is the storage protocol under the 1.x history provider.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import AESGCMEncryption, Keyspace, RedisChatMessageStore
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store._core.lua import FINGERPRINTS_KEPT


def message(role: str, text: str, message_id: str | None = None) -> Any:
    data: dict[str, Any] = {"role": role, "contents": [{"type": "text", "text": text}]}
    if message_id is not None:
        data["message_id"] = message_id
    return message_from_dict(data)


def conversation(turns: int, start: int = 0) -> list[Any]:
    return [message(role, f"{role} {n}") for n in range(start, start + turns) for role in ("user", "assistant")]


def texts(messages: list[Any]) -> list[str]:
    return [m.text for m in messages]


async def test_new_batches_are_appended_and_repeats_skipped(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        first = conversation(1)
        assert await store.add_new_messages(first) == 2
        assert await store.add_new_messages(first) == 0
        second = conversation(1, start=1)
        assert await store.add_new_messages([*first, *second]) == 2  # replay + new turn
        assert await store.add_new_messages(second[1:]) == 0  # the tail alone
        assert texts(await store.list_messages()) == texts([*first, *second])


async def test_a_replay_longer_than_the_remembered_fingerprints(redis_url: str) -> None:
    history = conversation(FINGERPRINTS_KEPT)  # twice as many messages as fingerprints kept
    async with RedisChatMessageStore(redis_url, thread_id="long") as store:
        assert await store.add_new_messages(history) == len(history)
        extra = conversation(1, start=10_000)
        assert await store.add_new_messages([*history, *extra]) == 2
        assert await store.count() == len(history) + 2


async def test_a_lone_user_message_without_id_is_never_a_repeat(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="yes") as store:
        assert await store.add_new_messages([message("user", "yes")]) == 1
        assert await store.add_new_messages([message("user", "yes")]) == 1  # "yes" twice is two answers
        assert await store.add_new_messages([message("user", "yes")], idempotency_key="k") == 1
        assert await store.add_new_messages([message("user", "yes")], idempotency_key="k") == 0
        assert await store.count() == 3


async def test_message_ids_decide_when_present(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="ids") as store:
        await store.add_new_messages([message("user", "hi"), message("assistant", "hello", "m1")])
        # Same text, new id: a new message.
        assert await store.add_new_messages([message("assistant", "hello", "m2")]) == 1
        # Same id, edited text (a streamed message re-sent whole): the same message.
        assert await store.add_new_messages([message("assistant", "hello again", "m2")]) == 0
        assert texts(await store.list_messages()) == ["hi", "hello", "hello"]


async def test_max_messages_bounds_messages_and_fingerprints(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="small", max_messages=3) as store:
        history = conversation(5)
        await store.add_new_messages(history)
        assert texts(await store.list_messages()) == texts(history[-3:])
        assert await raw.llen(Keyspace("chat_messages").thread("small").fingerprints) == 3
        # A replay that still starts with messages trimmed away adds only the new one.
        assert await store.add_new_messages([*history, message("user", "new")]) == 1
        assert texts(await store.list_messages()) == [*texts(history[-2:]), "new"]


async def test_clear_forgets_the_fingerprints(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="c") as store:
        turn = conversation(1)
        await store.add_new_messages(turn)
        await store.clear()
        assert await raw.exists(Keyspace("chat_messages").thread("c").fingerprints) == 0
        assert await store.add_new_messages(turn) == 2


async def test_fingerprints_refresh_with_the_ttl(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="ttl", ttl=100) as store:
        await store.add_new_messages(conversation(1))
        assert 99_000 < await raw.pttl(Keyspace("chat_messages").thread("ttl").fingerprints) <= 100_000


# -- message ids, however writers interleave -------------------------------------------------


async def test_a_known_id_is_skipped_wherever_it_is_in_the_batch(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="ids") as store:
        mine = [message("user", "q", "a1"), message("assistant", "r", "a2")]
        assert await store.add_new_messages(mine) == 2
        assert await store.add_new_messages([message("user", "other writer", "b1")]) == 1
        # A replay of mine no longer ends the thread: its ids still recognise it.
        assert await store.add_new_messages([*mine, message("user", "next", "a3")]) == 1
        # New messages around a known one, and an id twice in one batch.
        batch = [message("user", "x", "c1"), mine[1], message("assistant", "y", "c2"), message("user", "x", "c1")]
        assert await store.add_new_messages(batch) == 2
        assert texts(await store.list_messages()) == ["q", "r", "other writer", "next", "x", "y"]


@pytest.mark.current
async def test_concurrent_writers_replaying_their_last_messages_store_each_id_once(redis_url: str) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    writers, turns = 10, 20
    providers = [RedisChatHistoryProvider(redis_url) for _ in range(writers)]  # a pool each

    async def write(w: int) -> None:
        sent: list[Any] = []
        for n in range(turns):
            sent.append(message("user" if n % 2 == 0 else "assistant", f"w{w} m{n}", f"w{w}-{n}"))
            await providers[w].save_messages("session", sent[-3:])  # the newest, with the two before it

    try:
        await asyncio.gather(*(write(w) for w in range(writers)))
        stored = [str(m.message_id) for m in await providers[0].transcript("session")]
    finally:
        await asyncio.gather(*(provider.aclose() for provider in providers))
    assert sorted(stored) == sorted(f"w{w}-{n}" for w in range(writers) for n in range(turns))
    for w in range(writers):  # each writer's messages in the order it sent them
        assert [i for i in stored if i.startswith(f"w{w}-")] == [f"w{w}-{n}" for n in range(turns)]


async def test_ids_fingerprinted_before_a_key_rotation_are_still_known(redis_url: str) -> None:
    k1, k2 = bytes(range(32)), bytes(range(1, 33))
    mine = [message("user", "q", "a1"), message("assistant", "r", "a2")]
    before = AESGCMEncryption({"k1": k1}, current="k1")
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=before) as store:
        await store.add_new_messages(mine)
        await store.add_new_messages([message("user", "other writer", "b1")])
    after = AESGCMEncryption({"k2": k2, "k1": k1}, current="k2")
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=after) as store:
        assert await store.add_new_messages([*mine, message("user", "next", "a3")]) == 1
        assert texts(await store.list_messages()) == ["q", "r", "other writer", "next"]
