"""A thread's 1.x session snapshot travels with it: export, import and the CLI carry it.

The snapshot (``RedisSessionStore``'s ``{prefix}:{<id>}:session``) is one of the keys a thread
owns. An export left it behind, so an export and import onto another server lost a 1.x
session's state, and a thread holding only a snapshot could not be exported at all.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    CorruptSessionError,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    ThreadNotFoundError,
    ThreadRecord,
    ThreadRecordError,
)

from .scripted import user_message

KEYS = Keyspace()
SNAPSHOT = {"type": "session", "session_id": "s", "state": {"cart": ["book"]}}
KEY = os.urandom(32)


def sealed() -> AESGCMEncryption:
    return AESGCMEncryption(keys={"k1": KEY}, current="k1")


async def put_snapshot(raw: redis.asyncio.Redis, thread_id: str, *, ttl_ms: int | None = None) -> None:
    await raw.set(KEYS.thread(thread_id).session, json.dumps(SNAPSHOT), px=ttl_ms)


async def stored(raw: redis.asyncio.Redis, thread_id: str) -> bytes:
    value = await raw.get(KEYS.thread(thread_id).session)
    assert isinstance(value, bytes), f"no session snapshot for {thread_id!r}"
    return value


async def test_export_and_import_carry_the_session_snapshot(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="s", labels={"user": "alice"}) as store:
        await store.add_messages([user_message("hello")])
    await put_snapshot(raw, "s", ttl_ms=600_000)
    async with RedisThreadRegistry(redis_url) as registry:
        record = await registry.export_thread("s")
        assert record.session == SNAPSHOT
        assert record.session_ttl_remaining is not None
        assert 0 < record.session_ttl_remaining <= 600
        line = record.to_json()
        assert ThreadRecord.from_json(line) == record
        await registry.delete(["s"])
        assert await registry.import_thread(ThreadRecord.from_json(line))
    assert json.loads(await stored(raw, "s")) == SNAPSHOT
    assert 0 < await raw.pttl(KEYS.thread("s").session) <= 600_000
    async with RedisChatMessageStore(redis_url, thread_id="s") as store:
        assert [m.text for m in await store.list_messages()] == ["hello"]


async def test_a_thread_holding_only_a_snapshot_exports_and_imports_as_one(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    await put_snapshot(raw, "s")
    async with RedisThreadRegistry(redis_url) as registry:
        record = await registry.export_thread("s")
        assert (record.messages, record.session) == ([], SNAPSHOT)
        with pytest.raises(ThreadNotFoundError):  # fork copies messages: there are none
            await registry.fork("s", "copy")
        # Onto a thread with messages, labels and a registry entry: replaced by the snapshot alone.
        async with RedisChatMessageStore(redis_url, thread_id="t", labels={"user": "alice"}) as store:
            await store.add_messages([user_message("old")])
        assert await registry.import_thread(replace(record, thread_id="t"), replace=True)
        assert [t.thread_id for t in (await registry.list_threads()).threads] == []
        assert [t.thread_id for t in (await registry.list_threads(labels={"user": "alice"})).threads] == []
    assert sorted(await raw.keys("*:{t}*")) == [KEYS.thread("t").session.encode()]


async def test_a_sealed_snapshot_is_exported_in_the_clear_and_sealed_for_its_new_thread(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    from agent_framework_redis_store._core.encryption import key_id_of

    encryption = sealed()
    await raw.set(KEYS.thread("s").session, encryption.encrypt(json.dumps(SNAPSHOT), context=KEYS.thread("s").session))
    async with RedisThreadRegistry(redis_url, encryption=encryption) as registry:
        record = await registry.export_thread("s")
        assert record.session == SNAPSHOT
        assert await registry.import_thread(replace(record, thread_id="moved"))
    assert key_id_of(await stored(raw, "moved")) == "k1"
    async with RedisThreadRegistry(redis_url) as plain:  # no key: a sealed snapshot is named, not guessed at
        with pytest.raises(CorruptSessionError) as failed:
            await plain.export_thread("moved")
        assert failed.value.key == KEYS.thread("moved").session


@pytest.mark.parametrize(
    ("session", "named"),
    [
        ([], "'session' must be an object"),
        ({"snapshot": "x"}, "'session' must be an object"),
        ({"snapshot": {"type": "other", "session_id": "s"}}, "'session.snapshot'"),
        ({"snapshot": {"type": "session"}}, "'session.snapshot'"),
        ({"snapshot": SNAPSHOT, "ttl_remaining": -1}, "'session.ttl_remaining'"),
    ],
)
def test_a_record_with_a_bad_session_is_a_record_error_naming_it(session: object, named: str) -> None:
    line = json.dumps({"version": 1, "thread_id": "s", "messages": [], "session": session})
    with pytest.raises(ThreadRecordError, match=named.replace("(", r"\(").replace("[", r"\[")):
        ThreadRecord.from_json(line)


def test_a_record_needs_messages_or_a_session() -> None:
    with pytest.raises(ThreadRecordError, match="'messages'"):
        ThreadRecord.from_json(json.dumps({"version": 1, "thread_id": "s", "messages": []}))


async def test_the_cli_exports_and_imports_a_session_snapshot(
    redis_url: str, raw: redis.asyncio.Redis, tmp_path: Path
) -> None:
    from .test_cli_threads import cli_here

    await put_snapshot(raw, "s")
    target = tmp_path / "out.jsonl"
    exported = await asyncio.to_thread(cli_here, redis_url, "threads", "export", "s", "-o", str(target))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(target.read_text().splitlines()[0])["session"]["snapshot"] == SNAPSHOT
    await raw.flushall()
    imported = await asyncio.to_thread(cli_here, redis_url, "threads", "import", str(target))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(await stored(raw, "s")) == SNAPSHOT
