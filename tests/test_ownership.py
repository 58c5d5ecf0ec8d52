"""A thread is every key it owns, whichever of them exists (issue 15).

Eviction is simulated by deleting single keys, a damaged meta hash by overwriting one field with
garbage, and foreign keys by writing what another application might under the same prefix. Every
test runs in both generations unless it needs ``RedisSessionStore`` (1.x only).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    CorruptThreadMetaError,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    ThreadRecord,
    rekey_prefix,
)
from agent_framework_redis_store._core.encryption import key_id_of

from .scripted import user_message

KEYS = Keyspace()
REGISTRY = KEYS.registry
SNAPSHOT = b'{"type":"session","session_id":"s","state":{"cart":["book"]}}'
KEY1, KEY2 = os.urandom(32), os.urandom(32)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def only_k1() -> AESGCMEncryption:
    return AESGCMEncryption({"k1": KEY1}, current="k1")


def k2_and_k1() -> AESGCMEncryption:
    return AESGCMEncryption({"k2": KEY2, "k1": KEY1}, current="k2")


async def write(url: str, thread_id: str, labels: dict[str, str] | None, *texts: str, **options: Any) -> None:
    async with RedisChatMessageStore(url, thread_id=thread_id, labels=labels, **options) as store:
        await store.add_messages([user_message(t) for t in texts or ("hello",)])


def record(
    thread_id: str, *texts: str, labels: dict[str, str] | None = None, active: datetime | None = None
) -> ThreadRecord:
    return ThreadRecord(
        thread_id=thread_id,
        messages=[user_message(t).to_dict(exclude_none=True) for t in texts or ("hello",)],
        labels=labels or {},
        created_at=active,
        last_active=active,
        ttl=None,
        ttl_remaining=None,
    )


async def left_of(raw: redis.asyncio.Redis, *thread_ids: str) -> list[str]:
    """The keys of these threads that exist."""
    keys = [key for thread_id in thread_ids for key in KEYS.thread(thread_id).owned]
    return [key for key in keys if await raw.exists(key)]


def ids(threads: list[Any]) -> list[str]:
    return sorted(t.thread_id for t in threads)


# -- "a thread exists" means "any of its keys exists" -----------------------------------------------


async def test_import_onto_an_id_holding_only_a_session_snapshot_is_refused_and_keeps_it(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    session = KEYS.thread("s").session
    await raw.set(session, SNAPSHOT)
    async with RedisThreadRegistry(redis_url) as registry:
        assert not await registry.import_thread(record("s", "imported"))
        assert await raw.get(session) == SNAPSHOT
        assert await left_of(raw, "s") == [session]
        # replace=True replaces every key of the thread, as documented: the snapshot too.
        assert await registry.import_thread(record("s", "imported"), replace=True)
    assert await raw.exists(session) == 0


async def test_fork_onto_an_id_holding_only_a_session_snapshot_is_refused_and_keeps_it(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    await write(redis_url, "source", None, "a", "b")
    session = KEYS.thread("s").session
    await raw.set(session, SNAPSHOT)
    async with RedisThreadRegistry(redis_url) as registry:
        with pytest.raises(ValueError, match="already exists"):
            await registry.fork("source", "s")
    assert await raw.get(session) == SNAPSHOT
    assert await left_of(raw, "s") == [session]


async def test_a_session_only_thread_exists_for_info_missing_and_delete(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    await raw.set(KEYS.thread("s").session, SNAPSHOT)
    async with RedisThreadRegistry(redis_url) as registry:
        info = await registry.info("s")
        assert (info.exists, info.message_count, info.key_count) == (True, 0, 1)
        assert await registry.missing(["s", "nobody"]) == ["nobody"]
        assert await registry.delete(["s"]) == 1
    assert await left_of(raw, "s") == []


async def test_a_thread_whose_meta_hash_was_evicted_is_still_listed_and_keeps_its_entry(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    await write(redis_url, "evicted", {"user": "alice"}, "a", "b")
    await write(redis_url, "whole", {"user": "alice"}, "c")
    await raw.delete(KEYS.thread("evicted").meta)
    async with RedisThreadRegistry(redis_url) as registry:
        page = await registry.list_threads()
        assert ids(page.threads) == ["evicted", "whole"]
        evicted = next(t for t in page.threads if t.thread_id == "evicted")
        assert evicted.message_count == 2
        assert evicted.last_active is not None  # the registry's score: all that is known of it
        assert await raw.zscore(REGISTRY, "evicted") is not None  # not pruned
        # Her label index names it: it is hers as far as anything can tell.
        assert ids((await registry.list_threads(labels={"user": "alice"})).threads) == ["evicted", "whole"]
        stats = await registry.stats()
    assert (stats.threads, stats.messages) == (2, 3)


async def test_erase_erases_a_thread_whose_meta_hash_was_evicted(redis_url: str, raw: redis.asyncio.Redis) -> None:
    await write(redis_url, "alice-1", {"user": "alice"}, "a")
    await write(redis_url, "alice-2", {"user": "alice"}, "b")
    await write(redis_url, "bob-1", {"user": "bob"}, "c")
    await raw.set(KEYS.thread("alice-1").session, SNAPSHOT)
    await raw.delete(KEYS.thread("alice-1").meta)
    async with RedisThreadRegistry(redis_url) as registry:
        receipt = await registry.erase(labels={"user": "alice"})
    assert sorted(receipt.thread_ids) == ["alice-1", "alice-2"]
    assert receipt.complete
    assert await left_of(raw, "alice-1", "alice-2") == []
    assert await raw.zscore(REGISTRY, "alice-1") is None
    assert await left_of(raw, "bob-1") != []


async def test_erase_reports_a_thread_whose_labels_are_known_nowhere(redis_url: str, raw: redis.asyncio.Redis) -> None:
    await write(redis_url, "alice-1", {"user": "alice"}, "a")
    await write(redis_url, "alice-2", {"user": "alice"}, "b")
    # A prefix whose label indexes are not complete (threads from before them): erase reads the
    # registry, where the labels of a thread whose meta hash is gone cannot be checked.
    await raw.delete(KEYS.labels_complete)
    await raw.delete(KEYS.thread("alice-1").meta)
    async with RedisThreadRegistry(redis_url) as registry:
        receipt = await registry.erase(labels={"user": "alice"})
    assert receipt.thread_ids == ("alice-2",)
    assert receipt.unverified == ("alice-1",)
    assert receipt.to_dict()["unverified"] == ["alice-1"]
    assert await left_of(raw, "alice-1") != []  # reported, not guessed at
    assert await raw.zscore(REGISTRY, "alice-1") is not None


async def test_purge_deletes_every_key_of_an_old_thread_whatever_is_left_of_it(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    async with RedisThreadRegistry(redis_url) as registry:
        await registry.import_thread(record("old", "a", active=LONG_AGO))
        await registry.import_thread(record("recent", "b", active=await registry.now()))
        for thread_id in ("old", "recent"):  # its history evicted: only the session snapshot is left
            keys = KEYS.thread(thread_id)
            await raw.set(keys.session, SNAPSHOT)
            await raw.delete(keys.messages, keys.meta, keys.index)
        result = await registry.purge(older_than=timedelta(days=30))
    assert (result.purged, result.expired, result.kept) == (1, 0, 0)
    assert await left_of(raw, "old") == []
    assert await raw.zscore(REGISTRY, "old") is None
    # The recent one is not expired: its snapshot is left, and so is its registry entry.
    assert await left_of(raw, "recent") == [KEYS.thread("recent").session]
    assert await raw.zscore(REGISTRY, "recent") is not None


@pytest.mark.current
async def test_a_session_saved_during_the_erasure_is_erased_and_reported(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisSessionStore

    for n in range(3):
        await write(redis_url, f"alice-{n}", {"user": "alice"})
    async with RedisSessionStore(redis_url) as sessions, RedisThreadRegistry(redis_url) as registry:

        async def meanwhile(erased: int) -> None:
            if erased == 3:  # after the first batch: the framework's after-run SessionStore.set
                await sessions.set("alice-0", AgentSession(session_id="alice-0"))

        receipt = await registry.erase(labels={"user": "alice"}, on_progress=meanwhile)
        assert receipt.complete
        assert receipt.written_during == ("alice-0",)
        assert await sessions.get("alice-0") is None
    assert await left_of(raw, "alice-0", "alice-1", "alice-2") == []


async def test_an_erasure_that_cannot_finish_says_so_and_names_what_is_left(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    await write(redis_url, "alice-0", {"user": "alice"})
    session = KEYS.thread("alice-0").session

    async def meanwhile(erased: int) -> None:
        await raw.set(session, SNAPSHOT)  # a writer that saves again after every batch

    async with RedisThreadRegistry(redis_url) as registry:
        receipt = await registry.erase(labels={"user": "alice"}, on_progress=meanwhile)
    assert not receipt.complete
    assert receipt.remaining == ("alice-0",)
    assert receipt.to_dict()["remaining"] == ["alice-0"]
    assert await left_of(raw, "alice-0") == [session]  # what the receipt says is left


# -- rekey: every thread, whichever of its keys holds sealed values -------------------------------


async def test_rekey_prefix_rekeys_threads_holding_only_a_session_snapshot_or_a_summary(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    old = only_k1()
    await write(redis_url, "full", None, "a", "b", encryption=old)
    session_only = KEYS.thread("session-only")
    await raw.set(session_only.session, old.encrypt(SNAPSHOT.decode(), context=session_only.session))
    summary_only = KEYS.thread("summary-only")  # its messages evicted; the meta hash keeps the summary
    summary = json.dumps(user_message("summary").to_dict(exclude_none=True))
    await raw.hset(summary_only.meta, mapping={"summary": old.encrypt(summary, context=summary_only.summary)})

    report = await rekey_prefix(raw, k2_and_k1())

    sealed_session = await raw.get(session_only.session)
    assert sealed_session is not None
    assert key_id_of(sealed_session) == "k2"
    assert key_id_of(await raw.hget(summary_only.meta, "summary")) == "k2"  # type: ignore[misc]
    assert {key_id_of(e) for e in await raw.lrange(KEYS.thread("full").messages, 0, -1)} == {"k2"}  # type: ignore[misc]
    assert (report.threads_seen, report.threads_changed, report.entries_rekeyed, report.skipped) == (3, 3, 4, ())
    # The old key can go: everything reads with the new one alone.
    new_only = AESGCMEncryption({"k2": KEY2}, current="k2")
    opened = new_only.decrypt(
        sealed_session.decode() if isinstance(sealed_session, bytes) else sealed_session, context=session_only.session
    )
    assert opened == SNAPSHOT.decode()


@pytest.mark.current
async def test_a_session_store_snapshot_reads_with_the_new_key_alone_after_rekey(redis_url: str) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisSessionStore

    async with RedisSessionStore(redis_url, encryption=only_k1()) as sessions:
        session = AgentSession(session_id="s")
        session.state["cart"] = ["book"]
        await sessions.set("s", session)
        await rekey_prefix(sessions.redis_client, k2_and_k1())
    async with RedisSessionStore(redis_url, encryption=AESGCMEncryption({"k2": KEY2}, current="k2")) as rotated:
        restored = await rotated.get("s")
    assert restored is not None
    assert restored.state["cart"] == ["book"]


async def _foreign_keys(raw: redis.asyncio.Redis) -> dict[str, Any]:
    """Keys under the prefix that are not this layout's, or not of the type it writes, and their DUMP."""
    await raw.set("chat_messages:{str}", "a string where the message list should be")
    await raw.rpush("chat_messages:{foreign}", "another application's entry")  # type: ignore[misc]
    await raw.hset("chat_messages:{hashed}:session", mapping={"a": "hash"})  # type: ignore[misc]
    await raw.rpush("chat_messages:{a b}", "spelled as the store never spells a key")  # type: ignore[misc]
    names = ("chat_messages:{str}", "chat_messages:{foreign}", "chat_messages:{hashed}:session", "chat_messages:{a b}")
    return {name: await raw.dump(name) for name in names}


async def test_rekey_prefix_skips_and_reports_foreign_keys_and_finishes_the_rest(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    for thread_id in ("good-1", "good-2"):
        await write(redis_url, thread_id, None, "a", "b", encryption=only_k1())
    foreign = await _foreign_keys(raw)

    report = await rekey_prefix(raw, k2_and_k1(), scan_count=2)

    skipped = dict(report.skipped)
    assert set(skipped) == set(foreign)
    assert "holds another type than the list this layout keeps there" in skipped["chat_messages:{str}"]
    assert "holds another type than the string this layout keeps there" in skipped["chat_messages:{hashed}:session"]
    assert "chat_messages:{foreign}" in skipped["chat_messages:{foreign}"]  # the decryption error, naming it
    assert skipped["chat_messages:{a b}"] == "not a key of this layout"
    assert (report.threads_changed, report.entries_rekeyed) == (2, 4)
    for thread_id in ("good-1", "good-2"):
        stored = await raw.lrange(KEYS.thread(thread_id).messages, 0, -1)  # type: ignore[misc]
        assert [key_id_of(e) for e in stored] == ["k2", "k2"]
    for key, dumped in foreign.items():
        assert await raw.dump(key) == dumped  # left exactly as they were


async def test_cli_rekey_lists_the_keys_it_skipped(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from .test_cli_threads import cli_here

    await write(redis_url, "good", None, "a", encryption=only_k1())
    await raw.set("chat_messages:{str}", "a string where the message list should be")
    keys = ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in (("k2", KEY2), ("k1", KEY1)))

    ran = await asyncio.to_thread(cli_here, redis_url, "threads", "rekey", env={"REDIS_CHAT_STORE_KEYS": keys})

    assert ran.returncode == 1
    assert "re-encrypted 1 entry in 1 of 1 thread(s) with key 'k2'" in ran.stdout
    assert "skipped 'chat_messages:{str}': holds another type than the list this layout keeps there" in ran.stderr
    assert "1 key(s) left as they were" in ran.stderr
    assert KEY1.hex() not in ran.stdout + ran.stderr
    stored = await raw.lrange(KEYS.thread("good").messages, 0, -1)  # type: ignore[misc]
    assert [key_id_of(e) for e in stored] == ["k2"]


# -- one damaged meta field costs no other thread --------------------------------------------------

DAMAGE = [
    ("count", "many"),
    ("count", "-3"),
    ("active", "yesterday"),
    ("created", "9" * 40),  # out of range for a time
    ("ttl", "1.5h"),
    ("labels", "{not json"),
    ("labels", '["a", "list"]'),
    (None, "the meta key holds a string"),
]


async def damage(raw: redis.asyncio.Redis, thread_id: str, field: str | None, value: str) -> None:
    meta = KEYS.thread(thread_id).meta
    if field is None:
        await raw.delete(meta)
        await raw.set(meta, value)
    else:
        await raw.hset(meta, field, value)  # type: ignore[misc]


@pytest.mark.parametrize(("field", "value"), DAMAGE)
async def test_listings_skip_and_report_a_thread_with_a_damaged_meta_hash(
    redis_url: str, raw: redis.asyncio.Redis, field: str | None, value: str
) -> None:
    for thread_id in ("ok-1", "broken", "ok-2"):
        await write(redis_url, thread_id, {"user": "alice"})
    await damage(raw, "broken", field, value)
    async with RedisThreadRegistry(redis_url) as registry:
        for labels in (None, {"user": "alice"}):
            page = await registry.list_threads(labels=labels)
            assert (ids(page.threads), page.damaged) == (["ok-1", "ok-2"], ["broken"])
        reported: list[str] = []
        listed = [t.thread_id async for t in registry.iter_threads(on_damaged=reported.append)]
        assert (sorted(listed), reported) == (["ok-1", "ok-2"], ["broken"])
        stats = await registry.stats()
        assert (stats.threads, stats.damaged, stats.to_dict()["damaged"]) == (2, 1, 1)
        assert await raw.zscore(REGISTRY, "broken") is not None  # reported, not pruned


# (A negative count read as a number before: erasure was not stopped by it.)
@pytest.mark.parametrize(("field", "value"), [d for d in DAMAGE if d != ("count", "-3")])
async def test_erase_erases_a_thread_with_a_damaged_meta_hash(
    redis_url: str, raw: redis.asyncio.Redis, field: str | None, value: str
) -> None:
    await write(redis_url, "alice-1", {"user": "alice"})
    await write(redis_url, "broken", {"user": "alice"})
    await write(redis_url, "bob-1", {"user": "bob"})
    await damage(raw, "broken", field, value)
    async with RedisThreadRegistry(redis_url) as registry:
        receipt = await registry.erase(labels={"user": "alice"})
        assert sorted(receipt.thread_ids) == ["alice-1", "broken"]  # her label index names it
        assert receipt.complete
        assert ids((await registry.list_threads()).threads) == ["bob-1"]
    assert await left_of(raw, "alice-1", "broken") == []


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize("value", ["yesterday", None])
async def test_purge_keeps_and_reports_a_thread_whose_last_activity_is_damaged(
    redis_url: str, raw: redis.asyncio.Redis, dry_run: bool, value: str | None
) -> None:
    async with RedisThreadRegistry(redis_url) as registry:
        for thread_id in ("old-1", "broken", "old-2"):
            await registry.import_thread(record(thread_id, active=LONG_AGO))
        await damage(raw, "broken", "active" if value else None, value or "a string")
        result = await registry.purge(older_than=timedelta(days=30), dry_run=dry_run)
    assert (result.purged, result.expired, result.kept, result.damaged) == (2, 0, 0, ("broken",))
    assert result.to_dict()["damaged"] == ["broken"]
    assert await raw.zscore(REGISTRY, "broken") is not None
    assert KEYS.thread("broken").messages in await left_of(raw, "broken")


@pytest.mark.parametrize(
    ("field", "value"),
    [*(d for d in DAMAGE if d[0] is not None), ("first", "x"), ("boundary", "-1"), ("count", "\udcff")],
)
async def test_per_thread_reads_of_a_damaged_meta_field_name_the_key_and_the_field(
    redis_url: str, raw: redis.asyncio.Redis, field: str, value: str
) -> None:
    await write(redis_url, "t", {"user": "alice"}, "a", "b")
    meta = KEYS.thread("t").meta
    if value == "\udcff":  # not UTF-8 at all
        await raw.hset(meta, field, b"\xff\xfe")  # type: ignore[misc]
    else:
        await damage(raw, "t", field, value)

    def named(caught: pytest.ExceptionInfo[CorruptThreadMetaError]) -> None:
        assert (caught.value.key, caught.value.field) == (meta, field)
        assert repr(meta) in str(caught.value)
        assert repr(field) in str(caught.value)
        assert isinstance(caught.value, ValueError)  # what callers caught before

    async with RedisThreadRegistry(redis_url) as registry:
        for read in (registry.info, registry.export_thread, registry.fork):
            with pytest.raises(CorruptThreadMetaError) as caught:
                await read("t")
            named(caught)
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        with pytest.raises(CorruptThreadMetaError) as caught:
            await store.info()
        named(caught)
        if field in ("first", "boundary"):  # what the model gets depends on them
            with pytest.raises(CorruptThreadMetaError) as caught:
                await store.list_messages()
            named(caught)
    assert await raw.llen(KEYS.thread("t").messages) == 2  # type: ignore[misc]


# -- what the CLI reports of it ------------------------------------------------------------------


async def test_cli_lists_stats_and_purges_report_a_damaged_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from .test_cli_threads import cli_here

    for thread_id in ("ok", "[red]broken"):
        await write(redis_url, thread_id, None)
    await damage(raw, "[red]broken", "active", "yesterday")

    listed = await asyncio.to_thread(cli_here, redis_url, "threads", "list")
    assert listed.returncode == 0
    assert "skipped 1 thread(s) whose meta hash is damaged" in listed.stderr
    assert "'[red]broken'" in listed.stderr
    as_json = json.loads((await asyncio.to_thread(cli_here, redis_url, "threads", "list", "--json")).stdout)
    assert ([t["thread_id"] for t in as_json["threads"]], as_json["damaged"]) == (["ok"], ["[red]broken"])
    counted = await asyncio.to_thread(cli_here, redis_url, "stats")
    assert "threads skipped (damaged meta hash)" in counted.stdout
    purged = await asyncio.to_thread(cli_here, redis_url, "threads", "purge", "--older-than", "0s", "--yes")
    assert purged.returncode == 0
    assert "kept 1 thread(s) whose last activity cannot be read" in purged.stderr
    assert "'[red]broken'" in purged.stderr


async def test_cli_erase_fails_naming_threads_it_could_not_check(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from .test_cli_threads import cli_here

    await write(redis_url, "alice-1", {"user": "alice"}, "a")
    await write(redis_url, "alice-2", {"user": "alice"}, "b")
    await raw.delete(KEYS.labels_complete)
    await raw.delete(KEYS.thread("alice-1").meta)

    ran = await asyncio.to_thread(cli_here, redis_url, "threads", "erase", "--label", "user=alice", "--yes")

    assert ran.returncode == 1
    assert "erased 1 thread(s)" in ran.stdout
    assert "1 thread(s) left alone: their labels can be read nowhere" in ran.stderr
    assert "'alice-1'" in ran.stderr
    as_json = await asyncio.to_thread(cli_here, redis_url, "threads", "erase", "-l", "user=alice", "--yes", "--json")
    assert json.loads(as_json.stdout)["unverified"] == ["alice-1"]
    assert as_json.returncode == 1
