"""Per-label indexes (a user's sidebar without a scan), erasure with a receipt, and fork.

Real redis-server, real framework messages. Every count of Redis commands below comes
from the server's own ``INFO commandstats``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    SummaryCompaction,
    ThreadNotFoundError,
)

from .scripted import user_message

KEYS = Keyspace()


async def write(url: str, thread_id: str, labels: dict[str, str] | None, *texts: str, **options: Any) -> None:
    async with RedisChatMessageStore(url, thread_id=thread_id, labels=labels, **options) as store:
        await store.add_messages([user_message(t) for t in texts or ("hello",)])


async def indexed(raw: redis.asyncio.Redis, name: str, value: str) -> list[str]:
    members = await raw.zrevrange(KEYS.label_index(name, value), 0, -1)
    return [m.decode() for m in members]  # type: ignore[union-attr]


async def listed(url: str, labels: dict[str, str], limit: int = 50) -> list[str]:
    async with RedisThreadRegistry(url) as registry:
        ids: list[str] = []
        cursor = None
        while True:
            page = await registry.list_threads(labels=labels, limit=limit, cursor=cursor)
            ids += [t.thread_id for t in page.threads]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor


async def command_calls(raw: redis.asyncio.Redis) -> dict[str, int]:
    stats: Any = await raw.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


# -- the index ----------------------------------------------------------------------------------


async def test_a_users_page_reads_their_index_not_every_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    for n in range(300):
        await write(redis_url, f"other-{n:03}", {"user": f"u{n % 50}"})
    for n in range(3):
        await write(redis_url, f"alice-{n}", {"user": "alice", "tenant": "acme"})
    await raw.config_resetstat()
    assert await listed(redis_url, {"user": "alice"}) == ["alice-2", "alice-1", "alice-0"]  # newest first
    calls = await command_calls(raw)
    assert calls.get("hmget", 0) == 3  # the meta of alice's threads only, not of 303
    assert await listed(redis_url, {"user": "alice", "tenant": "acme"}) == ["alice-2", "alice-1", "alice-0"]
    assert await listed(redis_url, {"user": "alice", "tenant": "other"}) == []
    assert await indexed(raw, "tenant", "acme") == ["alice-2", "alice-1", "alice-0"]


async def test_pages_of_a_label_continue_exactly_after_the_cursor(redis_url: str) -> None:
    for n in range(25):
        await write(redis_url, f"a{n:02}", {"user": "alice"})
        await write(redis_url, f"b{n:02}", {"user": "bob"})
    assert await listed(redis_url, {"user": "alice"}, limit=4) == [f"a{n:02}" for n in range(24, -1, -1)]


async def test_relabelling_moves_a_thread_between_indexes(redis_url: str, raw: redis.asyncio.Redis) -> None:
    await write(redis_url, "t", {"user": "alice", "team": "red"})
    await write(redis_url, "t", {"user": "bob", "team": "red"})
    assert await indexed(raw, "user", "alice") == []
    assert await indexed(raw, "user", "bob") == ["t"]
    assert await indexed(raw, "team", "red") == ["t"]
    await write(redis_url, "t", None, "labels kept")  # labels=None keeps the stored ones, and their index
    assert await listed(redis_url, {"user": "bob"}) == ["t"]


async def test_an_index_entry_outlived_by_a_relabelling_is_neither_listed_nor_erased(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    # On a Cluster the index is written beside the thread; a writer holding old labels may
    # re-enter a relabelled thread. The thread's own labels decide.
    await write(redis_url, "t", {"user": "bob"})
    await raw.zadd(KEYS.label_index("user", "alice"), {"t": 1})
    assert await listed(redis_url, {"user": "alice"}) == []
    async with RedisThreadRegistry(redis_url) as registry:
        assert (await registry.erase(labels={"user": "alice"})).thread_ids == ()
    assert await listed(redis_url, {"user": "bob"}) == ["t"]


async def test_concurrent_writers_leave_each_index_exactly_matching_the_labels(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    async def writer(n: int) -> None:
        for round_ in range(10):
            user = "alice" if (n + round_) % 2 else "bob"
            await write(redis_url, f"t{n}", {"user": user}, f"round {round_}")

    await asyncio.gather(*(writer(n) for n in range(16)))
    async with RedisThreadRegistry(redis_url) as registry:
        truth = {t.thread_id: t.labels["user"] async for t in registry.iter_threads()}
    for user in ("alice", "bob"):
        assert sorted(await indexed(raw, "user", user)) == sorted(t for t, u in truth.items() if u == user)


async def test_expired_cleared_deleted_and_purged_threads_leave_the_index(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    await write(redis_url, "short", {"user": "alice"}, ttl=0.1)
    for name in ("kept", "cleared", "deleted", "purged"):
        await write(redis_url, name, {"user": "alice"})
    async with RedisChatMessageStore(redis_url, thread_id="cleared") as store:
        await store.clear()
    async with RedisThreadRegistry(redis_url) as registry:
        assert await registry.delete(["deleted"]) == 1
        # Make "purged" old: re-enter it with an activity a day ago.
        record = await registry.export_thread("purged")
        day_ago = (await registry.now()) - timedelta(days=1)
        await registry.import_thread(type(record)(**{**record.__dict__, "last_active": day_ago}), replace=True)
        assert (await registry.purge(older_than=timedelta(hours=1))).purged == 1
        for _ in range(500):  # the TTL runs out on the server (at most 10 s)
            if not await raw.exists(KEYS.thread("short").messages):
                break
            await asyncio.sleep(0.02)
        assert [t.thread_id for t in (await registry.list_threads(labels={"user": "alice"})).threads] == ["kept"]
    assert await indexed(raw, "user", "alice") == ["kept"]  # the expired entry was pruned as it was read


async def test_threads_written_before_the_index_are_listed_and_reindexed(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    for n in range(5):
        await write(redis_url, f"t{n}", {"user": "alice" if n % 2 else "bob"})
    # As a prefix written by an earlier version looks: no label indexes, no marker.
    await raw.delete(KEYS.labels_complete, KEYS.label_index("user", "alice"), KEYS.label_index("user", "bob"))
    assert await listed(redis_url, {"user": "alice"}) == ["t3", "t1"]  # read from the registry meanwhile
    async with RedisThreadRegistry(redis_url) as registry:
        progress: list[tuple[int, int]] = []
        assert await registry.reindex(on_progress=lambda done, total: progress.append((done, total))) == 5
        assert progress[-1] == (5, 5)
    assert await indexed(raw, "user", "alice") == ["t3", "t1"]
    assert await raw.exists(KEYS.labels_complete)
    await raw.config_resetstat()
    assert await listed(redis_url, {"user": "alice"}) == ["t3", "t1"]
    assert (await command_calls(raw)).get("hmget", 0) == 2


async def test_label_values_are_keyed_apart_whatever_they_hold(redis_url: str, raw: redis.asyncio.Redis) -> None:
    tricky = ["a=b", "a", "{a}", "a:b", "ä", "a b", "a%3Db"]
    for n, value in enumerate(tricky):
        await write(redis_url, f"t{n}", {"user": value})
    for n, value in enumerate(tricky):
        assert await listed(redis_url, {"user": value}) == [f"t{n}"]
    assert len({KEYS.label_index("user", value) for value in tricky}) == len(tricky)


# -- erasure --------------------------------------------------------------------------------


async def test_erasure_deletes_every_key_of_a_users_threads_and_gives_a_receipt(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    from types import SimpleNamespace

    class Summarizer:
        async def get_response(self, request: Any) -> Any:
            return SimpleNamespace(text="summary")

    policy = SummaryCompaction(Summarizer(), trigger_messages=2, keep_last_messages=1, background=False)
    for n in range(3):
        async with RedisChatMessageStore(
            redis_url, thread_id=f"alice-{n}", labels={"user": "alice"}, compaction=policy
        ) as store:
            await store.add_messages([user_message(f"a{i}") for i in range(4)])
            await store.add_new_messages([user_message("fingerprinted")])
            await store.compact()
        await raw.set(KEYS.thread(f"alice-{n}").session, "{}")
    await write(redis_url, "bob-0", {"user": "bob"}, "b0", "b1")
    bob_keys = sorted(await raw.keys("chat_messages:{bob-0}*"))

    async with RedisThreadRegistry(redis_url) as registry:
        dry = await registry.erase(labels={"user": "alice"}, dry_run=True)
        assert dry.dry_run
        assert sorted(dry.thread_ids) == ["alice-0", "alice-1", "alice-2"]
        assert await raw.exists(KEYS.thread("alice-0").messages)  # nothing deleted
        receipt = await registry.erase(labels={"user": "alice"})
        assert sorted(receipt.thread_ids) == ["alice-0", "alice-1", "alice-2"]
        assert receipt.messages_deleted == 3 * 5
        # messages, meta, fingerprints, index and session of each (the batch tokens are in meta)
        assert receipt.keys_deleted == dry.keys_deleted == 3 * 5
        assert receipt.complete
        assert receipt.written_during == ()
        assert receipt.started_at <= receipt.finished_at
        assert receipt.to_dict()["thread_ids"] == list(receipt.thread_ids)
        again = await registry.erase(labels={"user": "alice"})
        assert again.thread_ids == ()
        assert again.keys_deleted == 0
    assert await raw.keys("chat_messages:{alice*") == []
    assert await indexed(raw, "user", "alice") == []
    assert sorted(await raw.keys("chat_messages:{bob-0}*")) == bob_keys  # bob untouched
    assert await listed(redis_url, {"user": "bob"}) == ["bob-0"]


# A new thread of hers, or an open chat of hers saving a turn after its thread was erased.
@pytest.mark.parametrize("written", ["alice-late", "alice-0"], ids=["a-new-thread", "an-erased-thread-again"])
async def test_a_thread_written_during_the_erasure_is_erased_and_reported(
    redis_url: str, raw: redis.asyncio.Redis, written: str
) -> None:
    for n in range(3):
        await write(redis_url, f"alice-{n}", {"user": "alice"})

    async def meanwhile(erased: int) -> None:
        if erased == 3:  # after the first batch went
            await write(redis_url, written, {"user": "alice"}, "still chatting")

    async with RedisThreadRegistry(redis_url) as registry:
        receipt = await registry.erase(labels={"user": "alice"}, on_progress=meanwhile)
        assert (receipt.complete, receipt.written_during) == (True, (written,))
        assert sorted(receipt.thread_ids) == sorted({"alice-0", "alice-1", "alice-2", written})
        assert (await registry.erase(labels={"user": "alice"})).thread_ids == ()
    assert await raw.keys("chat_messages:{alice*") == []


async def test_erase_refuses_to_erase_everything(redis_url: str) -> None:
    async with RedisThreadRegistry(redis_url) as registry:
        with pytest.raises(ValueError, match="at least one label"):
            await registry.erase(labels={})


# -- fork -----------------------------------------------------------------------------------


async def test_a_fork_copies_the_thread_and_the_two_go_separate_ways(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="original", labels={"user": "alice"}, ttl=3600) as store:
        await store.add_messages([user_message(f"m{n}") for n in range(200)])
        await raw.config_resetstat()
        first_ten = await store.fork(upto=10)
        for_ten = await command_calls(raw)
        await raw.config_resetstat()
        await store.fork("copy")
        # One read and one write, whatever the length: the same commands for 200 messages as for 10.
        assert await command_calls(raw) == for_ten
        assert first_ten.startswith("thread_")
        await store.add_messages([user_message("only in the original")])
    async with RedisChatMessageStore(redis_url, thread_id="copy", ttl=3600) as copy:
        info = await copy.info()
        assert info.forked_from == "original"
        assert info.labels == {"user": "alice"}
        assert info.ttl == 3600
        assert info.ttl_remaining is not None
        await copy.add_messages([user_message("only in the copy")])
        texts = [m.text for m in await copy.transcript()]
        assert texts == [*(f"m{n}" for n in range(200)), "only in the copy"]
    async with RedisChatMessageStore(redis_url, thread_id="original") as original:
        assert (await original.transcript())[-1].text == "only in the original"
        assert len(await original.transcript()) == 201
    async with RedisChatMessageStore(redis_url, thread_id=first_ten) as short:
        assert [m.text for m in await short.transcript()] == [f"m{n}" for n in range(10)]
    assert sorted(await listed(redis_url, {"user": "alice"})) == sorted(["original", "copy", first_ten])


async def test_a_fork_of_an_encrypted_thread_is_sealed_for_its_own_key(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    encryption = AESGCMEncryption({"k1": b"f" * 32}, current="k1")
    async with RedisChatMessageStore(redis_url, thread_id="secret", encryption=encryption) as store:
        await store.add_messages([user_message("card 4111")])
        await store.fork("secret-copy")
    async with RedisChatMessageStore(redis_url, thread_id="secret-copy", encryption=encryption) as copy:
        assert [m.text for m in await copy.transcript()] == ["card 4111"]
    original = await raw.lindex(KEYS.thread("secret").messages, 0)  # type: ignore[misc]
    copied = await raw.lindex(KEYS.thread("secret-copy").messages, 0)  # type: ignore[misc]
    assert original != copied  # sealed anew, bound to the copy's key


async def test_a_fork_keeps_the_summary_when_it_copies_past_it(redis_url: str) -> None:
    from types import SimpleNamespace

    class Summarizer:
        async def get_response(self, request: Any) -> Any:
            return SimpleNamespace(text="the first four")

    policy = SummaryCompaction(Summarizer(), trigger_messages=5, keep_last_messages=2, background=False)
    async with RedisChatMessageStore(redis_url, thread_id="long", compaction=policy) as store:
        await store.add_messages([user_message(f"m{n}") for n in range(6)])
        assert (await store.compact()).boundary == 4
        await store.fork("whole")
        await store.fork("early", upto=3)
    async with RedisChatMessageStore(redis_url, thread_id="whole") as whole:
        assert [m.text for m in await whole.list_messages()] == [
            "Summary of the earlier conversation: the first four",
            "m4",
            "m5",
        ]
    async with RedisChatMessageStore(redis_url, thread_id="early") as early:
        assert [m.text for m in await early.list_messages()] == ["m0", "m1", "m2"]  # before the summary's end


async def test_fork_errors_name_the_problem(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        with pytest.raises(ThreadNotFoundError, match="No thread 't'"):
            await store.fork()
        await store.add_messages([user_message("x")])
        await store.fork("taken")
        with pytest.raises(ValueError, match="new_thread_id 'taken' already exists"):
            await store.fork("taken")
        with pytest.raises(ValueError, match="upto must be a positive int"):
            await store.fork(upto=0)
