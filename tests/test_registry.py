"""The thread registry the store keeps, and RedisThreadRegistry reading it (both generations)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    CorruptMessageError,
    Keyspace,
    RedisChatMessageStore,
    RedisStoreFactory,
    RedisThreadRegistry,
    ThreadNotFoundError,
    ThreadRecord,
    ThreadRecordError,
)

from .scripted import user_message

REGISTRY = "chat_messages:registry"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def meta_key(thread_id: str, prefix: str = "chat_messages") -> str:
    return f"{prefix}:{{{thread_id}}}:meta"


async def poll(condition: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Wait until ``await condition()`` is true, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.02)


async def _later_than(registry: RedisThreadRegistry, moment: datetime | None) -> bool:
    assert moment is not None
    return await registry.now() >= moment + timedelta(milliseconds=1)


def record(thread_id: str, *, active: datetime, texts: tuple[str, ...] = ("hi",), **extra: object) -> ThreadRecord:
    messages = [user_message(t).to_dict(exclude_none=True) for t in texts]
    fields = {"labels": {}, "created_at": active, "last_active": active, "ttl": None, "ttl_remaining": None}
    fields.update(extra)
    return ThreadRecord(thread_id=thread_id, messages=messages, **fields)  # type: ignore[arg-type]


# -- what the store records ------------------------------------------------------------------


async def test_append_records_thread_in_the_same_round_trip(redis_url: str, raw: redis.asyncio.Redis) -> None:
    monitor_client = redis.asyncio.Redis.from_url(redis_url)
    async with RedisChatMessageStore(redis_url, thread_id="t1", labels={"user": "alice"}, ttl=600) as store:
        await store.add_messages([user_message("warm up")])  # connects and loads the script
        await raw.ping()
        async with monitor_client.monitor() as monitor:
            await store.add_messages([user_message("a"), user_message("b")])
            await raw.echo("end of test")
            sent: list[str] = []
            while not sent or not sent[-1].startswith("ECHO"):
                command = await asyncio.wait_for(monitor.next_command(), timeout=5)
                if command["client_type"] != "lua":  # commands run by a script are listed too
                    sent.append(command["command"].split(" ", 1)[0])
    await monitor_client.aclose()
    # The client sent one command for the whole append: the script, registry included.
    assert sent == ["EVALSHA", "ECHO"]
    meta = {_text(k): _text(v) for k, v in (await raw.hgetall(meta_key("t1"))).items()}
    assert meta["count"] == "3"
    assert json.loads(meta["labels"]) == {"user": "alice"}
    assert meta["ttl"] == "600000"
    assert int(meta["created"]) <= int(meta["active"])
    assert await raw.zscore(REGISTRY, "t1") == float(meta["active"])
    assert 0 < await raw.pttl(meta_key("t1")) <= 600_000


async def test_registry_off_writes_no_metadata(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="plain", registry=False) as store:
        await store.add_messages([user_message("a")])
        assert await store.count() == 1
    assert await raw.exists(meta_key("plain")) == 0
    assert await raw.zcard(REGISTRY) == 0


async def test_trim_and_dedup_still_hold_with_the_registry(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=3) as store:
        for i in range(5):
            await store.add_messages([user_message(str(i))])
        await store.add_messages([user_message("again")], idempotency_key="k")
        await store.add_messages([user_message("again")], idempotency_key="k")
        assert [m.text for m in await store.list_messages()] == ["3", "4", "again"]
        info = await store.info()
    assert info.message_count == 3
    assert await raw.hget(meta_key("t"), "count") == b"3"


async def test_labels_none_keeps_stored_labels_and_new_labels_replace(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", labels={"user": "alice", "team": "x"}) as store:
        await store.add_messages([user_message("a")])
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([user_message("b")])
        assert (await store.info()).labels == {"team": "x", "user": "alice"}
    async with RedisChatMessageStore(redis_url, thread_id="t", labels={"user": "bob"}) as store:
        await store.add_messages([user_message("c")])
        assert (await store.info()).labels == {"user": "bob"}


@pytest.mark.parametrize(
    ("labels", "error", "fragment"),
    [
        ("user=alice", TypeError, "labels must be a dict"),
        ({"user": 1}, TypeError, "labels['user'] must be a str"),
        ({1: "x"}, TypeError, "labels keys must be non-empty str"),
        ({"": "x"}, TypeError, "labels keys must be non-empty str"),
        ({"a=b": "x"}, ValueError, "must not contain '='"),
    ],
)
def test_bad_labels_are_rejected_by_store_and_factory(labels: object, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        RedisChatMessageStore("redis://127.0.0.1:1", labels=labels)  # type: ignore[arg-type]
    with pytest.raises(error, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        RedisStoreFactory("redis://127.0.0.1:1", labels=labels)  # type: ignore[arg-type]


async def test_factory_stores_carry_the_labels(redis_url: str) -> None:
    async with (
        RedisStoreFactory(redis_url, labels={"tenant": "acme"}) as factory,
        RedisThreadRegistry(redis_url) as registry,
    ):
        for _ in range(3):
            await factory().add_messages([user_message("x")])
        page = await registry.list_threads(labels={"tenant": "acme"})
    assert len(page.threads) == 3


async def test_info_describes_the_thread(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", labels={"user": "alice"}, ttl=120) as store:
        empty = await store.info()
        assert not empty.exists
        assert (empty.message_count, empty.created_at, empty.ttl_remaining) == (0, None, None)
        await store.add_messages([user_message("a"), user_message("b")])
        info = await store.info()
    assert info.exists
    assert info.message_count == 2
    assert info.created_at is not None
    assert info.last_active is not None
    assert info.created_at <= info.last_active
    assert abs((datetime.now(UTC) - info.last_active).total_seconds()) < 60
    assert info.ttl == 120
    assert info.ttl_remaining is not None
    assert 0 < info.ttl_remaining <= 120
    assert info.labels == {"user": "alice"}
    assert info.approximate_bytes is not None
    assert info.approximate_bytes > 0
    assert info.to_dict()["thread_id"] == "t"


async def test_clear_removes_the_thread_from_the_registry(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="gone") as store, RedisThreadRegistry(redis_url) as registry:
        await store.add_messages([user_message("a")])
        assert [t.thread_id for t in (await registry.list_threads()).threads] == ["gone"]
        await store.clear()
        assert (await registry.list_threads()).threads == []
        with pytest.raises(ThreadNotFoundError, match="No thread 'gone'"):
            await registry.info("gone")
    assert await raw.zcard(REGISTRY) == 0
    assert await raw.exists(meta_key("gone")) == 0


async def test_deduplicating_appends_record_the_thread_too(redis_url: str, raw: redis.asyncio.Redis) -> None:
    turn = [user_message("hello"), user_message("again")]
    async with RedisChatMessageStore(redis_url, thread_id="t", labels={"user": "alice"}, ttl=60) as store:
        assert await store.add_new_messages(turn) == 2
        assert await store.add_new_messages(turn) == 0  # a replayed turn stores nothing
        info = await store.info()
    assert (info.message_count, info.labels, info.ttl) == (2, {"user": "alice"}, 60)
    assert await raw.zscore(REGISTRY, "t") is not None
    assert 0 < await raw.pttl(meta_key("t")) <= 60_000


@pytest.mark.current
async def test_provider_sessions_appear_in_the_registry_with_labels(redis_url: str) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    from .scripted import ScriptedChatClient, make_agent

    async with RedisChatHistoryProvider(redis_url, labels={"app": "support"}) as history:
        agent = make_agent(ScriptedChatClient(), context_providers=[history])
        await agent.run("I am Alice", session=agent.create_session(session_id="alice"))
        await agent.run("I am Bob", session=agent.create_session(session_id="bob"))
    async with RedisThreadRegistry(redis_url) as registry:
        page = await registry.list_threads(labels={"app": "support"})
    assert sorted(t.thread_id for t in page.threads) == ["alice", "bob"]
    assert all(t.message_count == 2 for t in page.threads)  # the question and the answer


async def test_delete_removes_every_key_of_the_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_new_messages([user_message("a")])  # also writes fingerprints
    await raw.set("chat_messages:{t}:session", "{}")  # a 1.x session snapshot of the same id
    async with RedisThreadRegistry(redis_url) as registry:
        assert await registry.delete(["t"]) == 1
    assert await raw.keys("*") == []


# -- expiry ------------------------------------------------------------------------------------


async def test_expired_threads_vanish_from_listings_and_stats(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisThreadRegistry(redis_url) as registry:
        async with RedisChatMessageStore(redis_url, thread_id="short", ttl=0.2) as store:
            await store.add_messages([user_message("soon gone")])
        async with RedisChatMessageStore(redis_url, thread_id="long", ttl=600) as store:
            await store.add_messages([user_message("stays")])

        async def expired() -> bool:
            return await raw.exists("chat_messages:{short}", meta_key("short")) == 0

        await poll(expired)
        assert await raw.zscore(REGISTRY, "short") is not None  # stale until read
        assert [t.thread_id for t in (await registry.list_threads()).threads] == ["long"]
        assert await raw.zscore(REGISTRY, "short") is None  # pruned on read
        stats = await registry.stats()
    assert (stats.threads, stats.messages) == (1, 1)


async def test_purge_removes_entries_of_expired_threads(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisThreadRegistry(redis_url) as registry:
        for name in ("a", "b", "c"):
            async with RedisChatMessageStore(redis_url, thread_id=name, ttl=600) as store:
                await store.add_messages([user_message(name)])
        # Force expiry on the server instead of waiting ten minutes: every key of the thread, as a TTL does.
        for name in ("a", "b"):
            for key in Keyspace().thread(name).owned:
                await raw.pexpire(key, 1)

        async def expired() -> bool:
            return await raw.exists(*Keyspace().thread("a").owned, *Keyspace().thread("b").owned) == 0

        await poll(expired)
        dry = await registry.purge(older_than=timedelta(days=30), dry_run=True)
        assert (dry.purged, dry.expired) == (0, 2)
        assert await raw.zcard(REGISTRY) == 3
        result = await registry.purge(older_than=timedelta(days=30))
    assert (result.purged, result.expired, result.kept) == (0, 2, 0)
    assert await raw.zrange(REGISTRY, 0, -1) == [b"c"]


# -- listing ----------------------------------------------------------------------------------


async def test_list_threads_pages_in_order_of_last_activity(redis_url: str) -> None:
    async with RedisThreadRegistry(redis_url) as registry:
        factory = RedisStoreFactory(redis_client=registry.redis_client)
        for i in range(120):
            await factory.store(f"t{i:03}").add_messages([user_message("x")])
        newest = (await registry.info("t119")).last_active
        await poll(lambda: _later_than(registry, newest))  # a distinct millisecond, not a tie
        await factory.store("t005").add_messages([user_message("latest")])
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = await registry.list_threads(limit=25, cursor=cursor)
            assert len(page.threads) <= 25
            seen += [t.thread_id for t in page.threads]
            actives = [t.last_active for t in page.threads]
            assert actives == sorted(actives, reverse=True)  # type: ignore[type-var]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert len(seen) == 120
    assert len(set(seen)) == 120
    assert seen[0] == "t005"


async def test_paging_through_ties_returns_every_thread_once(redis_url: str) -> None:
    same = datetime(2026, 1, 1, tzinfo=UTC)
    async with RedisThreadRegistry(redis_url) as registry:
        for i in range(1100):  # more ties than one registry batch
            await registry.import_thread(record(f"tie{i:04}", active=same))
        await registry.import_thread(record("newer", active=same + timedelta(seconds=1)))
        await registry.import_thread(record("older", active=same - timedelta(seconds=1)))
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = await registry.list_threads(limit=7, cursor=cursor)
            seen += [t.thread_id for t in page.threads]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert [t.thread_id async for t in registry.iter_threads()] == seen
    assert len(seen) == 1102
    assert len(set(seen)) == 1102
    assert (seen[0], seen[-1]) == ("newer", "older")


async def _page_through(registry: RedisThreadRegistry, limit: int, cursor: str | None = None) -> list[str]:
    seen: list[str] = []
    while True:
        page = await registry.list_threads(limit=limit, cursor=cursor)
        seen += [t.thread_id for t in page.threads]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def _expire(raw: redis.asyncio.Redis, *thread_ids: str) -> None:
    """Let threads expire by TTL on the server (their registry entries stay behind)."""
    keys = [key for thread_id in thread_ids for key in Keyspace().thread(thread_id).owned]
    for key in keys:  # every key of the thread, as a TTL does
        await raw.pexpire(key, 1)

    async def expired() -> bool:
        return await raw.exists(*keys) == 0

    await poll(expired)


async def test_paging_past_an_expired_tied_thread_skips_no_live_one(redis_url: str, raw: redis.asyncio.Redis) -> None:
    same = datetime(2026, 1, 1, tzinfo=UTC)
    async with RedisThreadRegistry(redis_url) as registry:
        for name in ("a", "b", "c"):  # one score: written in the same millisecond, or imported
            await registry.import_thread(record(name, active=same))
        await _expire(raw, "c")
        assert await _page_through(registry, limit=1) == ["b", "a"]
    assert await raw.zrange(REGISTRY, 0, -1) == [b"a", b"b"]  # the stale entry was removed on the way


async def test_a_thread_written_between_pages_shifts_no_other(redis_url: str) -> None:
    same = datetime(2026, 1, 1, tzinfo=UTC)
    async with RedisThreadRegistry(redis_url) as registry:
        for name in ("a", "b", "c"):
            await registry.import_thread(record(name, active=same))
        first = await registry.list_threads(limit=1)
        assert [t.thread_id for t in first.threads] == ["c"]
        async with RedisChatMessageStore(redis_client=registry.redis_client, thread_id="c") as store:
            await store.add_messages([user_message("c again")])  # its score moves to now
        assert await _page_through(registry, limit=1, cursor=first.next_cursor) == ["b", "a"]


async def test_paging_while_tied_threads_expire_and_move_loses_none_of_the_rest(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    same = datetime(2026, 1, 1, tzinfo=UTC)
    names = [f"t{i:02}" for i in range(40)]
    async with RedisThreadRegistry(redis_url) as registry:
        for name in names:
            await registry.import_thread(record(name, active=same))
        await registry.import_thread(record("older", active=same - timedelta(seconds=1)))
        first = await registry.list_threads(limit=10)
        seen = [t.thread_id for t in first.threads]
        assert seen == names[::-1][:10]
        # Between pages: some seen and some unseen threads expire, others are written again.
        await _expire(raw, "t35", "t12", "t05")
        for name in ("t38", "t20"):
            async with RedisChatMessageStore(redis_client=registry.redis_client, thread_id=name) as store:
                await store.add_messages([user_message("again")])
        rest = await _page_through(registry, limit=3, cursor=first.next_cursor)
    untouched = [n for n in names[::-1][10:] if n not in ("t12", "t05", "t20")]
    assert rest == [*untouched, "older"]


async def test_a_cursor_from_the_previous_version_still_continues(redis_url: str) -> None:
    same = datetime(2026, 1, 1, tzinfo=UTC)
    async with RedisThreadRegistry(redis_url) as registry:
        for name in ("a", "b", "c"):
            await registry.import_thread(record(name, active=same))
        score = int((same - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
        # The earlier cursor form: [score, ties passed, member], JSON then base64.
        old = json.dumps([score, 1, base64.b64encode(b"c").decode()])
        cursor = base64.urlsafe_b64encode(old.encode()).decode()
        assert await _page_through(registry, limit=1, cursor=cursor) == ["b", "a"]
        with pytest.raises(ValueError, match="is not a cursor"):
            await registry.list_threads(cursor=base64.urlsafe_b64encode(b"[1]").decode())


async def test_tied_mixed_case_and_non_ascii_ids_page_in_redis_order(redis_url: str, raw: redis.asyncio.Redis) -> None:
    same = datetime(2026, 1, 1, tzinfo=UTC)
    # Redis orders equal scores by bytes ('B' < 'a' < 'ab' < 'é'), unlike most locales' collation.
    names = ["a", "B", "ab", "é", "Z", "a b", "a-b", "日本", "A"]
    async with RedisThreadRegistry(redis_url) as registry:
        for name in names:
            await registry.import_thread(record(name, active=same))
        expected = [_text(m) for m in await raw.zrevrange(REGISTRY, 0, -1)]
        assert expected == sorted(names, key=lambda n: n.encode(), reverse=True)
        assert await _page_through(registry, limit=1) == expected


async def test_purge_through_more_tied_threads_than_one_batch(redis_url: str, raw: redis.asyncio.Redis) -> None:
    old = datetime.now(UTC) - timedelta(days=60)
    async with RedisThreadRegistry(redis_url) as registry:
        for i in range(1100):  # more ties than one registry batch
            await registry.import_thread(record(f"old{i:04}", active=old))
        async with RedisChatMessageStore(redis_client=registry.redis_client, thread_id="recent") as store:
            await store.add_messages([user_message("x")])
        await _expire(raw, "old0007", "old0600", "old1099")
        dry = await registry.purge(older_than=timedelta(days=30), dry_run=True)
        assert (dry.purged, dry.expired, dry.kept) == (1097, 3, 0)
        done = await registry.purge(older_than=timedelta(days=30))
    assert (done.purged, done.expired, done.kept) == (1097, 3, 0)
    assert await raw.zrange(REGISTRY, 0, -1) == [b"recent"]
    assert await raw.exists("chat_messages:{old0500}", meta_key("old0500")) == 0


async def test_list_filters_by_labels_and_activity(redis_url: str) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    async with RedisThreadRegistry(redis_url) as registry:
        factory = RedisStoreFactory(redis_client=registry.redis_client, labels={"user": "alice", "plan": "pro"})
        await factory.store("alice-new").add_messages([user_message("x")])
        await registry.import_thread(record("alice-old", active=old, labels={"user": "alice", "plan": "pro"}))
        bob = RedisChatMessageStore(redis_client=registry.redis_client, thread_id="bob", labels={"user": "bob"})
        await bob.add_messages([user_message("y")])

        async def ids(**query: object) -> list[str]:
            return [t.thread_id for t in (await registry.list_threads(**query)).threads]  # type: ignore[arg-type]

        assert await ids() == ["bob", "alice-new", "alice-old"]
        assert await ids(labels={"user": "alice"}) == ["alice-new", "alice-old"]
        assert await ids(labels={"user": "alice", "plan": "free"}) == []
        assert await ids(active_since=timedelta(days=1)) == ["bob", "alice-new"]
        assert await ids(labels={"user": "alice"}, active_since=timedelta(days=1)) == ["alice-new"]
        assert await ids(active_since=old - timedelta(seconds=1)) == ["bob", "alice-new", "alice-old"]
        first = await registry.list_threads(labels={"user": "alice"}, limit=1)
        assert [t.thread_id for t in first.threads] == ["alice-new"]
        rest = await registry.list_threads(labels={"user": "alice"}, limit=1, cursor=first.next_cursor)
        assert [t.thread_id for t in rest.threads] == ["alice-old"]
        with pytest.raises(ValueError, match="limit must be a positive int"):
            await registry.list_threads(limit=0)
        with pytest.raises(ValueError, match="is not a cursor"):
            await registry.list_threads(cursor="garbage")


# -- purge, stats, delete -----------------------------------------------------------------------


async def test_purge_deletes_only_threads_older_than_the_cutoff(redis_url: str, raw: redis.asyncio.Redis) -> None:
    now = datetime.now(UTC)
    async with RedisThreadRegistry(redis_url) as registry:
        for i in range(30):
            await registry.import_thread(record(f"old{i}", active=now - timedelta(days=40)))
        await registry.import_thread(record("recent", active=now - timedelta(days=2)))
        async with RedisChatMessageStore(redis_url, thread_id="live") as store:
            await store.add_messages([user_message("x")])
        progress: list[tuple[int, int]] = []
        dry = await registry.purge(older_than=timedelta(days=30), dry_run=True)
        assert (dry.purged, dry.dry_run) == (30, True)
        assert await raw.zcard(REGISTRY) == 32
        result = await registry.purge(older_than=timedelta(days=30), on_progress=lambda d, t: progress.append((d, t)))
        assert (result.purged, result.expired, result.kept) == (30, 0, 0)
        assert progress
        assert progress[-1] == (32, 32)
        remaining = sorted([t.thread_id async for t in registry.iter_threads()])
        assert remaining == ["live", "recent"]
        assert await raw.exists("chat_messages:{old0}", meta_key("old0")) == 0
        with pytest.raises(ValueError, match="older_than"):
            await registry.purge(older_than=-1)


async def test_stats_count_threads_messages_and_lengths(redis_url: str) -> None:
    async with RedisThreadRegistry(redis_url, key_prefix="p") as registry:
        factory = RedisStoreFactory(redis_client=registry.redis_client, key_prefix="p")
        for i, length in enumerate((1, 1, 5, 12)):
            await factory.store(f"t{i}").add_messages([user_message(str(n)) for n in range(length)])
        stats = await registry.stats()
    assert (stats.key_prefix, stats.threads, stats.messages) == ("p", 4, 19)
    assert stats.length_distribution == {"1": 2, "2-10": 1, "11-100": 1}
    assert stats.approximate_bytes is not None
    assert stats.approximate_bytes > 0
    assert stats.oldest_activity is not None
    assert stats.newest_activity is not None
    assert stats.oldest_activity <= stats.newest_activity


async def test_delete_and_missing(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisThreadRegistry(redis_url) as registry:
        for name in ("a", "b"):
            async with RedisChatMessageStore(redis_url, thread_id=name) as store:
                await store.add_messages([user_message(name)])
        assert await registry.missing(["a", "zz", "b", "yy"]) == ["zz", "yy"]
        assert await registry.delete(["a", "zz"]) == 1
        assert [t.thread_id async for t in registry.iter_threads()] == ["b"]
    assert await raw.exists("chat_messages:{a}", meta_key("a")) == 0


async def test_prefixes_are_separate(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="x", key_prefix="one") as store:
        await store.add_messages([user_message("a")])
    async with RedisThreadRegistry(redis_url, key_prefix="two") as registry:
        assert (await registry.list_threads()).threads == []
        assert (await registry.stats()).threads == 0


async def test_registry_accepts_a_decoding_client(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        async with RedisChatMessageStore(redis_url, thread_id="ü:{1}", labels={"k": "v"}) as store:
            await store.add_messages([user_message("a")])
        registry = RedisThreadRegistry(redis_client=client)
        assert [t.thread_id for t in (await registry.list_threads(limit=1)).threads] == ["ü:{1}"]
        assert (await registry.export_thread("ü:{1}")).labels == {"k": "v"}
    finally:
        await client.aclose()


# -- export / import ----------------------------------------------------------------------------


async def test_export_import_round_trip_is_exact(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="src", labels={"user": "alice"}, ttl=3600) as store:
        await store.add_messages([user_message(f"m{i} ✓") for i in range(5)])
    async with RedisThreadRegistry(redis_url) as registry, RedisThreadRegistry(redis_url, key_prefix="copy") as copy:
        exported = await registry.export_thread("src")
        line = exported.to_json()
        parsed = ThreadRecord.from_json(line)
        assert parsed == exported
        assert await copy.import_thread(parsed) is True
        assert await copy.import_thread(parsed) is False  # exists: refused
        assert await copy.import_thread(parsed, replace=True) is True
        original, restored = await registry.info("src"), await copy.info("src")
    assert await raw.lrange("copy:{src}", 0, -1) == await raw.lrange("chat_messages:{src}", 0, -1)
    assert restored.labels == original.labels == {"user": "alice"}
    assert (restored.created_at, restored.last_active, restored.ttl) == (
        original.created_at,
        original.last_active,
        original.ttl,
    )
    assert original.ttl_remaining is not None
    assert restored.ttl_remaining is not None
    assert abs(restored.ttl_remaining - original.ttl_remaining) < 5
    # The imported thread is a normal thread: a store continues it with its sliding TTL.
    async with RedisChatMessageStore(redis_url, thread_id="src", key_prefix="copy", ttl=3600) as store:
        await store.add_messages([user_message("after import")])
        assert [m.text for m in await store.list_messages(last=2)] == ["m4 ✓", "after import"]


async def test_export_of_an_unknown_thread_raises(redis_url: str) -> None:
    async with RedisThreadRegistry(redis_url) as registry:
        with pytest.raises(ThreadNotFoundError, match="No thread 'nope' under key prefix 'chat_messages'"):
            await registry.export_thread("nope")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (b"\x00not json", "JSONDecodeError"),
        (b"\xff\xfe", "UnicodeDecodeError"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"contents": []}', "'role' must be a non-empty string"),
    ],
)
async def test_export_of_a_corrupt_entry_names_key_and_index(
    redis_url: str, raw: redis.asyncio.Redis, entry: bytes, reason: str
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="bad") as store:
        await store.add_messages([user_message(f"m{i}") for i in range(3)])
    await raw.lset("chat_messages:{bad}", 1, entry)  # pyright: ignore[reportArgumentType]  # bytes are sent as is
    async with RedisThreadRegistry(redis_url) as registry:
        with pytest.raises(CorruptMessageError) as caught:
            await registry.export_thread("bad")
    assert (caught.value.key, caught.value.index) == ("chat_messages:{bad}", 1)
    assert reason in str(caught.value)
    assert "'chat_messages:{bad}' at index 1" in str(caught.value)
    assert await raw.llen("chat_messages:{bad}") == 3  # nothing else touched


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"thread_id": "", "messages": [{"role": "user"}]}', "thread_id must be a non-empty str"),
        ('{"thread_id": "t", "messages": []}', "empty only when the record has a 'session'"),
        ('{"thread_id": "t", "messages": [{"contents": []}]}', "messages[0] is not a message"),
        ('{"thread_id": "t", "messages": [{"role": "user"}], "ttl": -1}', "'ttl' must be a positive number"),
        ('{"thread_id": "t", "messages": [{"role": "user"}], "labels": {"u": 1}}', "labels['u'] must be a str"),
        ('{"thread_id": "t", "messages": [{"role": "user"}], "last_active": "yesterday"}', "'last_active' is not"),
        ('{"version": 9, "thread_id": "t", "messages": [{"role": "user"}]}', "'version' is 9"),
    ],
)
def test_malformed_records_name_the_problem(line: str, fragment: str) -> None:
    with pytest.raises(ThreadRecordError) as caught:
        ThreadRecord.from_json(line)
    assert fragment in str(caught.value)


# -- concurrency ---------------------------------------------------------------------------------


async def test_concurrent_writers_keep_the_registry_consistent(redis_url: str, raw: redis.asyncio.Redis) -> None:
    threads, writers_per_thread, appends = 8, 4, 15

    async def writer(thread: int, writer_id: int) -> None:
        labels = {"thread": str(thread)}
        async with RedisChatMessageStore(redis_url, thread_id=f"c{thread}", labels=labels) as store:
            for n in range(appends):
                await store.add_messages([user_message(f"{writer_id}.{n}.a"), user_message(f"{writer_id}.{n}.b")])

    await asyncio.gather(*(writer(t, w) for t in range(threads) for w in range(writers_per_thread)))
    async with RedisThreadRegistry(redis_url) as registry:
        listed = [t async for t in registry.iter_threads()]
        stats = await registry.stats()
    assert sorted(t.thread_id for t in listed) == [f"c{t}" for t in range(threads)]
    for summary in listed:
        key = f"chat_messages:{{{summary.thread_id}}}"
        assert summary.message_count == await raw.llen(key) == writers_per_thread * appends * 2
        assert summary.labels == {"thread": summary.thread_id[1:]}
        assert summary.last_active is not None
        score = await raw.zscore(REGISTRY, summary.thread_id)
        assert score == (summary.last_active - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1)
    assert stats.messages == threads * writers_per_thread * appends * 2
