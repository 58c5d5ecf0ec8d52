"""``compression="zlib"``: large bodies stored compressed, before encryption; any store reads them."""

from __future__ import annotations

import base64
import dataclasses
import os
import zlib
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    CorruptMessageError,
    RedisChatMessageStore,
    RedisThreadRegistry,
)
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store._core.compression import COMPRESSED_PREFIX, MIN_COMPRESSED_BYTES

from .scripted import user_message

KEY = os.urandom(32)
LONG = "Redis keeps every byte of every thread in memory, so a long answer costs what it weighs. " * 40


def encryption() -> AESGCMEncryption:
    return AESGCMEncryption({"k1": KEY}, current="k1")


def answer(text: str) -> Any:
    return message_from_dict(
        {"role": "assistant", "contents": [{"type": "text", "text": text}], "message_id": "chatcmpl-1"}
    )


def text(entry: bytes | str) -> str:
    return entry.decode() if isinstance(entry, bytes) else entry


async def test_large_bodies_are_stored_compressed_and_read_back_exactly(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    messages = [user_message("short"), answer(LONG)]
    async with RedisChatMessageStore(redis_url, thread_id="t", compression="zlib") as store:
        await store.add_messages(messages)
        assert [m.to_dict() for m in await store.transcript()] == [m.to_dict() for m in messages]
        assert [m.to_dict() for m in await store.list_messages()] == [m.to_dict() for m in messages]
        short, long = [text(e) for e in await raw.lrange(store.redis_key, 0, -1)]
    assert short.startswith("{")  # below MIN_COMPRESSED_BYTES: plain JSON
    assert long.startswith(COMPRESSED_PREFIX)
    assert len(long) < len(LONG) / 4
    # Any store reads them, with compression= or without.
    async with RedisChatMessageStore(redis_url, thread_id="t") as plain:
        assert [m.to_dict() for m in await plain.transcript()] == [m.to_dict() for m in messages]


async def test_a_body_that_does_not_shrink_stays_json(redis_url: str, raw: redis.asyncio.Redis) -> None:
    noise = base64.b64encode(os.urandom(MIN_COMPRESSED_BYTES)).decode()  # incompressible
    async with RedisChatMessageStore(redis_url, thread_id="t", compression="zlib") as store:
        await store.add_messages([answer(noise)])
        [entry] = await raw.lrange(store.redis_key, 0, -1)
        assert text(entry).startswith("{")
        [loaded] = await store.transcript()
    assert loaded.text == noise


async def test_compressed_then_encrypted(redis_url: str, raw: redis.asyncio.Redis) -> None:
    messages = [user_message("short"), answer(LONG)]
    async with RedisChatMessageStore(redis_url, thread_id="t", compression="zlib", encryption=encryption()) as store:
        await store.add_messages(messages)
        assert [m.to_dict() for m in await store.transcript()] == [m.to_dict() for m in messages]
        stored = [text(e) for e in await raw.lrange(store.redis_key, 0, -1)]
        key = store.redis_key
    assert all(e.startswith("aesgcm1:k1:") for e in stored)
    assert "Redis keeps" not in "".join(stored)
    assert encryption().decrypt(stored[1], context=key).startswith(COMPRESSED_PREFIX)
    assert len(stored[1]) < len(LONG) / 3  # ciphertext of the compressed body, not of the JSON
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=encryption()) as plain:
        assert [m.to_dict() for m in await plain.transcript()] == [m.to_dict() for m in messages]


async def test_rekey_keeps_bodies_compressed(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", compression="zlib") as store:
        await store.add_messages([answer(LONG)])
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=encryption()) as sealed:
        assert await sealed.rekey(encrypt_plaintext=True) == 1
        [entry] = await raw.lrange(sealed.redis_key, 0, -1)
        assert encryption().decrypt(text(entry), context=sealed.redis_key).startswith(COMPRESSED_PREFIX)
        assert [m.text for m in await sealed.transcript()] == [LONG]


async def test_export_and_import_of_a_compressed_thread(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", compression="zlib") as store:
        await store.add_messages([user_message("q"), answer(LONG)])
    async with RedisThreadRegistry(redis_url) as registry:
        record = await registry.export_thread("t")
        assert await registry.import_thread(dataclasses.replace(record, thread_id="copy"))
    async with RedisChatMessageStore(redis_url, thread_id="copy") as copy:
        assert [m.text for m in await copy.transcript()] == ["q", LONG]


async def test_a_fork_of_a_compressed_thread_is_compressed(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", compression="zlib", encryption=encryption()) as store:
        await store.add_messages([user_message("q"), answer(LONG)])
        forked = await store.fork("branch")
    async with RedisChatMessageStore(redis_url, thread_id=forked, encryption=encryption()) as copy:
        [_, entry] = await raw.lrange(copy.redis_key, 0, -1)
        assert encryption().decrypt(text(entry), context=copy.redis_key).startswith(COMPRESSED_PREFIX)
        assert [m.text for m in await copy.transcript()] == ["q", LONG]


def packed(data: bytes) -> bytes:
    return COMPRESSED_PREFIX.encode() + base64.b64encode(data)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (COMPRESSED_PREFIX.encode() + b"not base64!", "not valid base64"),
        (packed(b"not a zlib stream"), "does not decompress"),
        (packed(zlib.compress(b'{"role":"user","contents":["hi"]}')[:-6]), "truncated"),
        (packed(zlib.compress(b'{"role":"user","contents":["hi"]}') + b"more"), "trailing data"),
        (packed(zlib.compress(b"\xff\xfe")), "not UTF-8"),
        (packed(zlib.compress(b"[1, 2]")), "expected a JSON object"),
    ],
)
@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "encrypted"])
async def test_a_damaged_compressed_entry_is_named_corrupt_with_key_and_index(
    redis_url: str, raw: redis.asyncio.Redis, entry: bytes, reason: str, sealed: bool
) -> None:
    options: dict[str, Any] = {"encryption": encryption()} if sealed else {}
    async with RedisChatMessageStore(redis_url, thread_id="t", compression="zlib", **options) as store:
        await store.add_messages([user_message("good 0"), answer(LONG)])
        damaged = encryption().encrypt(entry.decode(), context=store.redis_key).encode() if sealed else entry
        await raw.rpush(store.redis_key, damaged)
        await store.add_messages([user_message("good 3")])
        with pytest.raises(CorruptMessageError, match=reason) as caught:
            await store.transcript()
        assert (caught.value.key, caught.value.index) == ("chat_messages:{t}", 2)
        with pytest.raises(CorruptMessageError) as windowed:
            await store.list_messages(last=2)
        assert windowed.value.index == -2
        assert [m.text for m in await store.list_messages(last=1)] == ["good 3"]


@pytest.mark.parametrize(("value", "error"), [("gzip", ValueError), (True, TypeError), (6, TypeError)])
def test_compression_is_checked(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="compression must be 'zlib' or None"):
        RedisChatMessageStore("redis://127.0.0.1:1", compression=value)  # type: ignore[arg-type]
