"""Threads written by the previous version's append scripts keep reading and appending correctly.

The previous version (0.2 before issue 16) kept a registered thread's batch tokens in the
batches sorted set and refreshed every key's TTL on every append; this one keeps the tokens in
the meta hash and refreshes the TTLs once they drift. ``tests/data/previous_*.lua`` are that
version's scripts, exactly as it sent them: a thread is written with them, then with this
version, then with them again (a rolling upgrade), and must read as one history.
``tests/data/v0_1_append_new_and_trim.lua`` is 0.1.0's 1.x append (hex fingerprints), as it sent it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis.asyncio

from agent_framework_redis_store import Keyspace, RedisChatMessageStore, RedisThreadRegistry
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store._core.fingerprints import batch_member
from agent_framework_redis_store._core.lua import newest_mark

from .test_bookkeeping import hex_id_fingerprint

DATA = Path(__file__).parent / "data"
KEYS = Keyspace("chat_messages")
LABELS = '{"user":"alice"}'


def message(role: str, text: str, message_id: str | None = None) -> Any:
    data: dict[str, Any] = {"role": role, "contents": [{"type": "text", "text": text}]}
    if message_id is not None:
        data["message_id"] = message_id
    return message_from_dict(data)


def turn(n: int) -> list[Any]:
    return [message("user", f"question {n}"), message("assistant", f"answer {n}", f"chatcmpl-{n}")]


def texts(messages: list[Any]) -> list[str]:
    return [m.text for m in messages]


def previous_script(name: str) -> str:
    """The previous version's script ``name``, exactly as it sent it (name line, constants, libraries, body)."""
    library = (DATA / "previous_append_library.lua").read_text().split("\n", 2)[2]  # without its own comment
    return "\n".join((f"-- {name}", library, (DATA / f"previous_{name}.lua").read_text()))


async def previous_append(
    raw: redis.asyncio.Redis,
    store: RedisChatMessageStore,
    messages: list[Any],
    *,
    token: str,
    max_messages: int,
    ttl_ms: int,
    dedupe: bool = False,
) -> int:
    """One append by the previous version's script (APPEND_NEW_AND_TRIM when ``dedupe``)."""
    thread = store._thread  # pyright: ignore[reportPrivateUsage]
    batch = thread.encode(messages, fingerprints=dedupe)
    keys = KEYS.thread(store.thread_id)
    index = [*batch.index[:-1], f"{batch.index[-1]}|{newest_mark(batch.payloads[-1])}"]
    header = [max_messages, ttl_ms, batch_member(token), time.time_ns() // 1000, len(messages) if dedupe else 0]
    header += ["1", LABELS, store.thread_id]
    if dedupe:
        source = previous_script("append_new_and_trim")
        script_keys = [keys.messages, keys.batches, keys.meta, keys.index, keys.fingerprints, KEYS.registry]
        args = [*header, *batch.fingerprints, *batch.payloads, *index]
    else:
        source = previous_script("append_and_trim")
        script_keys = [keys.messages, keys.batches, keys.meta, keys.index, KEYS.registry]
        args = [*header, *batch.payloads, *index]
    return int(await raw.eval(source, len(script_keys), *script_keys, *args))  # type: ignore[misc]


async def test_a_thread_of_the_previous_version_reads_and_appends_through_a_rolling_upgrade(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    keys = KEYS.thread("t")
    options: dict[str, Any] = {"max_messages": 6, "ttl": 100, "labels": {"user": "alice"}}
    async with RedisChatMessageStore(redis_url, thread_id="t", **options) as store:
        for n in range(3):
            await previous_append(raw, store, turn(n), token=f"old-{n}", max_messages=6, ttl_ms=100_000)
        assert await raw.zcard(keys.batches) == 3  # the previous layout
        assert texts(await store.list_messages()) == [t for n in range(3) for t in (f"question {n}", f"answer {n}")]

        for n in range(3, 5):
            await store.add_messages(turn(n), idempotency_key=f"new-{n}")
        await store.add_messages(turn(4), idempotency_key="new-4")  # a retry: applied once
        assert texts(await store.list_messages()) == [t for n in (2, 3, 4) for t in (f"question {n}", f"answer {n}")]
        tokens: bytes = await raw.hget(keys.meta, "batches") or b""  # type: ignore[assignment]
        assert tokens[-16:] == batch_member("new-4").hex().encode()

        # An old process still writing the thread (rolling upgrade), then this version again.
        await previous_append(raw, store, turn(5), token="old-5", max_messages=6, ttl_ms=100_000)
        await store.add_messages(turn(6), idempotency_key="new-6")
        await store.add_messages(turn(6), idempotency_key="new-6")
        assert texts(await store.list_messages()) == [t for n in (4, 5, 6) for t in (f"question {n}", f"answer {n}")]
        assert await store.count() == 6
        # Windows read the index both versions kept.
        window = RedisChatMessageStore(redis_client=raw, thread_id="t", context_messages=3)
        assert texts(await window.list_messages()) == ["answer 5", "question 6", "answer 6"]
        for key in (keys.messages, keys.meta, keys.index, keys.batches):
            assert 90_000 < await raw.pttl(key) <= 100_000

    async with RedisThreadRegistry(redis_url) as registry:
        [summary] = (await registry.list_threads(labels={"user": "alice"})).threads
        assert (summary.thread_id, summary.message_count) == ("t", 6)
        await registry.delete(["t"])
    assert await raw.exists(*keys.owned) == 0  # the previous version's batch set included


async def test_repeat_detection_continues_over_the_previous_version_s_fingerprints(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", labels={"user": "alice"}) as store:
        transcript: list[Any] = []
        for n in range(4):
            transcript += turn(n)
            await previous_append(raw, store, transcript, token=f"old-{n}", max_messages=0, ttl_ms=0, dedupe=True)
        assert await store.count() == 8
        # This version gets the whole transcript again, then a replay of an answer by id only.
        transcript += turn(4)
        assert await store.add_new_messages(transcript) == 2
        assert await store.add_new_messages([message("assistant", "answer 2 (rephrased)", "chatcmpl-2")]) == 0
        transcript += turn(5)
        await previous_append(raw, store, transcript, token="old-5", max_messages=0, ttl_ms=0, dedupe=True)
        assert await store.add_new_messages([*transcript, *turn(6)]) == 2
        expected = [t for n in range(7) for t in (f"question {n}", f"answer {n}")]
        assert texts(await store.list_messages()) == expected


async def test_a_writer_still_on_0_1_rewriting_the_fingerprints_in_hex_does_not_bring_back_repeats(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    # 0.1 wrote fingerprints as hex and knows nothing of the meta hash's 'fingerprint_width' (which
    # lets this version look older ids up with an exact LPOS): the field must not outlive its rewrite.
    source = (DATA / "v0_1_append_new_and_trim.lua").read_text()
    keys = KEYS.thread("t")
    history = [message("user" if n % 2 == 0 else "assistant", f"m{n}", f"id-{n}") for n in range(4)]
    async with RedisChatMessageStore(redis_url, thread_id="t", labels={"user": "alice"}) as store:
        await store.add_new_messages(history)
        assert await raw.hget(keys.meta, "fingerprint_width") == b"9"

        old_turn = [message("user", "q", "id-q"), message("assistant", "a", "id-a"), message("user", "q2", "id-q2")]
        batch = store._thread.encode(old_turn)  # pyright: ignore[reportPrivateUsage]
        index = [*batch.index[:-1], f"{batch.index[-1]}|{newest_mark(batch.payloads[-1])}"]
        header = [0, 0, "", time.time_ns() // 1000, len(old_turn), "1", LABELS, "t"]
        script_keys = [keys.messages, keys.batches, keys.meta, keys.index, keys.fingerprints, KEYS.registry]
        fingerprints = [hex_id_fingerprint(str(m.message_id)) for m in old_turn]
        args = [*header, *fingerprints, *batch.payloads, *index]
        assert await raw.eval(source, len(script_keys), *script_keys, *args) == 3  # type: ignore[misc]

        # id-q is older than the batch's span now, among 0.1's hex entries.
        assert await store.add_new_messages([old_turn[0], message("assistant", "new", "id-new")]) == 1
        assert await raw.hget(keys.meta, "fingerprint_width") is None
        assert await store.add_new_messages([old_turn[1], message("user", "newer", "id-newer")]) == 1
        assert texts(await store.list_messages()) == ["m0", "m1", "m2", "m3", "q", "a", "q2", "new", "newer"]
