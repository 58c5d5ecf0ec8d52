"""The idempotency and repeat-detection bookkeeping stays small, and what earlier versions wrote still works.

A registered thread remembers its newest ``BATCH_TOKENS_KEPT`` batches as 8-byte digests (hex)
in its meta hash, an unregistered one in a sorted set that stays a listpack, and the
fingerprints of its newest messages as 9-byte entries; earlier versions kept the tokens in the
sorted set (raw ones, 256 of them, a skiplist, before that) and wrote hex fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis.asyncio

from agent_framework_redis_store import Keyspace, RedisChatMessageStore
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store._core.fingerprints import batch_member
from agent_framework_redis_store._core.lua import (
    BATCH_TOKEN_HEX,
    BATCH_TOKENS_KEPT,
    FINGERPRINT_WIDTH,
    FINGERPRINTS_KEPT,
    HEX_FINGERPRINT_WIDTH,
    NEWEST_MARK_WIDTH,
    newest_mark,
)

from .scripted import user_message

KEYS = Keyspace().thread


def message(role: str, text: str) -> Any:
    return message_from_dict({"role": role, "contents": [{"type": "text", "text": text}]})


def turn(n: int) -> list[Any]:
    return [message("user", f"question {n}"), message("assistant", f"answer {n}")]


async def test_the_meta_hash_keeps_the_newest_tokens_as_short_digests(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        for n in range(BATCH_TOKENS_KEPT + 20):
            await store.add_messages([user_message(f"m{n}")], idempotency_key=f"a long caller key {'x' * 200} {n}")
    tokens = await raw.hget(KEYS("t").meta, "batches")
    assert tokens is not None
    assert len(tokens) == BATCH_TOKENS_KEPT * BATCH_TOKEN_HEX
    newest = batch_member(f"a long caller key {'x' * 200} {BATCH_TOKENS_KEPT + 19}").hex().encode()
    assert tokens[-len(newest) :] == newest
    assert await raw.exists(KEYS("t").batches) == 0


async def test_an_unregistered_thread_keeps_its_tokens_in_a_listpack_set(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", registry=False) as store:
        for n in range(BATCH_TOKENS_KEPT + 20):
            await store.add_messages([user_message(f"m{n}")], idempotency_key=f"key {n}")
        await store.add_messages([user_message("m0")], idempotency_key=f"key {BATCH_TOKENS_KEPT + 19}")
        assert await store.count() == BATCH_TOKENS_KEPT + 20
    batches = KEYS("t").batches
    assert await raw.zcard(batches) == BATCH_TOKENS_KEPT
    assert await raw.object("encoding", batches) == b"listpack"
    assert {len(member) for member in await raw.zrange(batches, 0, -1)} == {8}


async def test_a_retry_is_recognised_after_as_many_other_batches_as_are_kept(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("first")], idempotency_key="first")
        for n in range(BATCH_TOKENS_KEPT - 1):
            await store.add_messages([user_message(f"m{n}")])
        await store.add_messages([user_message("first")], idempotency_key="first")  # its reply was lost
        assert await store.count() == BATCH_TOKENS_KEPT


async def test_an_earlier_version_s_batch_set_restarts_compact(redis_url: str, raw: redis.asyncio.Redis) -> None:
    batches = KEYS("t").batches
    # As earlier versions kept it: 256 raw tokens (32 hex digits, run:<uuid>), scored in microseconds.
    await raw.zadd(batches, {f"run:{n:032x}" if n % 2 else f"{n:032x}": 1_700_000_000_000_000 + n for n in range(256)})
    assert await raw.object("encoding", batches) == b"skiplist"
    async with RedisChatMessageStore(redis_url, thread_id="t", ttl=100, registry=False) as store:
        await store.add_messages([user_message("hello")], idempotency_key="k")
        await store.add_messages([user_message("hello")], idempotency_key="k")
        assert await store.count() == 1
    assert await raw.zcard(batches) == 1
    assert await raw.object("encoding", batches) == b"listpack"
    assert 99_000 < await raw.pttl(batches) <= 100_000


async def test_only_the_newest_fingerprint_carries_the_mark(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        for n in range(5):
            await store.add_new_messages(turn(n))
    entries = await raw.lrange(KEYS("t").fingerprints, 0, -1)
    assert [len(e) for e in entries] == [FINGERPRINT_WIDTH] * 9 + [FINGERPRINT_WIDTH + NEWEST_MARK_WIDTH]


async def test_fingerprints_stay_a_few_kilobytes(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_new_messages([message("user", f"m{n}") for n in range(FINGERPRINTS_KEPT + 50)])
    fingerprints = KEYS("t").fingerprints
    assert await raw.llen(fingerprints) == FINGERPRINTS_KEPT
    assert (await raw.memory_usage(fingerprints, samples=0) or 0) < 4_000


def hex_fingerprint(data: dict[str, Any]) -> str:
    """A fingerprint as earlier versions wrote it: the kind letter and 16 hex digits."""
    role = data["role"]["value"] if isinstance(data["role"], dict) else data["role"]
    contents = json.dumps(data["contents"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    kind = "u" if role == "user" else "c"
    return kind + hashlib.blake2b(f"{role}\n{contents}".encode(), digest_size=8).hexdigest()


async def test_an_earlier_version_s_hex_fingerprints_still_recognise_a_replay(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    history = [m for n in range(3) for m in turn(n)]
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages(history)
    # The fingerprint list as an earlier version left it: hex, every batch's newest still marked.
    newest = await raw.lindex(KEYS("t").messages, -1)
    assert isinstance(newest, bytes)
    old = [hex_fingerprint(m.to_dict(exclude_none=True)) for m in history]
    old[1] += "0" * NEWEST_MARK_WIDTH  # a stale mark of an earlier batch
    old[-1] += newest_mark(newest.decode())
    await raw.rpush(KEYS("t").fingerprints, *old)

    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        assert await store.add_new_messages([*history, *turn(3)]) == 2  # a replayed transcript
        assert await store.add_new_messages(turn(3)) == 0  # the same turn saved twice
        assert await store.count() == 8
    # The earlier newest lost its mark; the new ones are short.
    lengths = [len(e) for e in await raw.lrange(KEYS("t").fingerprints, 0, -1)]
    assert lengths[-3:] == [HEX_FINGERPRINT_WIDTH, FINGERPRINT_WIDTH, FINGERPRINT_WIDTH + NEWEST_MARK_WIDTH]


async def test_a_damaged_token_field_restarts_and_a_retry_is_still_recognised(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("first")])
        await raw.hset(KEYS("t").meta, "batches", "xyz")  # not whole tokens: every one after it would be misaligned
        await store.add_messages([user_message("second")], idempotency_key="k")
        await store.add_messages([user_message("second")], idempotency_key="k")  # its reply was lost
        assert await store.count() == 2
    assert await raw.hget(KEYS("t").meta, "batches") == batch_member("k").hex().encode()


def with_id(role: str, text: str, message_id: str) -> Any:
    return message_from_dict({"role": role, "contents": [{"type": "text", "text": text}], "message_id": message_id})


def hex_id_fingerprint(message_id: str) -> str:
    """An id's fingerprint as earlier versions (0.1) wrote it: 'i' and 16 hex digits."""
    return "i" + hashlib.blake2b(message_id.encode(), digest_size=8).hexdigest()


def id_history(length: int) -> list[Any]:
    """``length`` messages, user and assistant in turn, each with an id (``id-<n>``)."""
    return [with_id("user" if n % 2 == 0 else "assistant", f"m{n}", f"id-{n}") for n in range(length)]


async def test_an_old_id_is_found_deep_in_the_fingerprints_before_and_after_they_are_known_clean(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    # The ids beyond the newest few are looked up where they are stored (LPOS) once the meta hash
    # says every entry has this version's width; until then the list is read once and checked.
    history = id_history(40)
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_new_messages(history[:20])
        # Written by this version: known clean from the start.
        assert await raw.hget(KEYS("t").meta, "fingerprint_width") == str(FINGERPRINT_WIDTH).encode()
        await store.add_new_messages(history[20:])
        for old in (history[0], history[13], history[38]):  # deep, middle, among the newest two
            assert await store.add_new_messages([old, with_id("user", "new", f"new-{old.message_id}")]) == 1
        assert await store.count() == 43


async def test_an_earlier_version_s_hex_id_fingerprints_are_read_until_they_roll_out(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    history = id_history(6)
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages(history)
    # As an earlier version left them: hex digests, and a stale mark on an entry that is not the newest.
    newest = await raw.lindex(KEYS("t").messages, -1)
    assert isinstance(newest, bytes)
    old = [hex_id_fingerprint(str(m.message_id)) for m in history]
    old[2] += "0" * NEWEST_MARK_WIDTH
    old[-1] += newest_mark(newest.decode())
    await raw.rpush(KEYS("t").fingerprints, *old)
    await raw.hdel(KEYS("t").meta, "fingerprint_width")

    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        for n, old_message in enumerate(history[:4]):  # each older than the newest two, one a marked entry
            batch = [old_message, with_id("user", f"next {n}", f"next-{n}")]
            assert await store.add_new_messages(batch) == 1
            # Not every entry has this version's width yet: no LPOS on them.
            assert await raw.hget(KEYS("t").meta, "fingerprint_width") is None
        assert await store.count() == 10


async def test_a_batch_of_many_older_ids_is_recognised_whole(redis_url: str, raw: redis.asyncio.Redis) -> None:
    # Past a few LPOS lookups the older fingerprints are read once instead: either way, every id is known.
    history = id_history(60)
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_new_messages(history)
        again = history[5:45:3]  # 14 ids from deep in the thread, not continuing its end
        assert await store.add_new_messages([*again, with_id("user", "new", "new-1")]) == 1
        assert await store.add_new_messages([history[7], with_id("user", "newer", "new-2")]) == 1
        assert await store.count() == 62
        assert await raw.hget(KEYS("t").meta, "fingerprint_width") == str(FINGERPRINT_WIDTH).encode()
