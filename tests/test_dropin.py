"""The list-like methods of agent-framework-redis's store, on ours: same names, arguments, results and errors.

Each one is one atomic step against concurrent appends and trims (real redis-server, real
framework messages). In the legacy generation the same calls run on Microsoft's real store
beside ours, and must give the same answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import AESGCMEncryption, Keyspace, RedisChatMessageStore, SummaryCompaction
from agent_framework_redis_store._core.codec import message_from_dict

from .scripted import user_message


def text(role: str, value: str) -> Any:
    return message_from_dict({"role": role, "contents": [{"type": "text", "text": value}]})


async def texts(store: RedisChatMessageStore) -> list[str]:
    return [m.text for m in await store.transcript()]


async def test_append_extend_getitem_and_len(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.append(user_message("a"))
        await store.extend([user_message("b"), user_message("c")])
        assert await texts(store) == ["a", "b", "c"]
        assert (await store.getitem(0)).text == "a"
        assert (await store.getitem(-1)).text == "c"
        assert (await store.getitem(-3)).text == "a"
        with pytest.raises(IndexError, match="list index out of range"):
            await store.getitem(3)
        with pytest.raises(IndexError, match="list index out of range"):
            await store.getitem(-4)
        assert await store.__len__() == 3  # as upstream's: a coroutine, so len(store) cannot work
        assert store.redis_key == "chat_messages:{t}"


async def test_setitem_replaces_in_place_and_keeps_the_window_right(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", context_messages=2) as store:
        await store.extend([user_message("a"), user_message("b"), user_message("c")])
        await store.setitem(1, user_message("B"))
        await store.setitem(-1, user_message("C"))
        assert await texts(store) == ["a", "B", "C"]
        assert [m.text for m in await store.list_messages()] == ["B", "C"]
        with pytest.raises(IndexError, match="list index out of range"):
            await store.setitem(3, user_message("x"))
        with pytest.raises(IndexError, match="list index out of range"):
            await store.setitem(-4, user_message("x"))
        with pytest.raises(TypeError, match="index must be an int"):
            await store.setitem("1", user_message("x"))  # type: ignore[arg-type]
        # The index still describes the list: appends and windows carry on.
        await store.append(user_message("d"))
        assert [m.text for m in await store.list_messages()] == ["C", "d"]


async def test_index_and_remove_find_equal_messages(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.extend([text("user", "a"), text("assistant", "b"), text("user", "a"), text("user", "c")])
        assert await store.index(text("user", "a")) == 0
        assert await store.index(text("user", "c")) == 3
        with pytest.raises(ValueError, match="not found in store"):
            await store.index(text("assistant", "a"))  # same text, other role: not equal
        await store.remove(text("user", "a"))  # the first occurrence
        assert await texts(store) == ["b", "a", "c"]
        with pytest.raises(ValueError, match="not found in store"):
            await store.remove(text("user", "zzz"))
        await store.remove(text("user", "c"))  # the newest: the index is re-marked
        await store.append(text("user", "d"))
        assert await texts(store) == ["b", "a", "d"]
        assert await store.count() == 3


async def test_the_methods_work_on_encrypted_threads(redis_url: str, raw: redis.asyncio.Redis) -> None:
    encryption = AESGCMEncryption({"k1": b"k" * 32}, current="k1")
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=encryption) as store:
        await store.extend([user_message("secret a"), user_message("secret b")])
        assert await store.index(user_message("secret b")) == 1
        await store.setitem(0, user_message("secret A"))
        await store.remove(user_message("secret b"))
        assert await texts(store) == ["secret A"]
        assert (await store.getitem(-1)).text == "secret A"
    for entry in await raw.lrange(Keyspace().thread("t").messages, 0, -1):  # type: ignore[misc]
        assert isinstance(entry, bytes)
        assert entry.startswith(b"aesgcm1:k1:")
        assert b"secret" not in entry


async def test_removing_a_summarized_message_keeps_the_summary_s_boundary(redis_url: str) -> None:
    from types import SimpleNamespace

    class Summarizer:
        async def get_response(self, request: Any) -> Any:
            return SimpleNamespace(text="s")

    policy = SummaryCompaction(Summarizer(), trigger_messages=3, keep_last_messages=2, background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy) as store:
        await store.extend([user_message(str(n)) for n in range(5)])
        assert (await store.compact()).boundary == 3
        await store.remove(user_message("0"))  # summarized: the summary now covers two stored messages
        assert [m.text for m in (await store.list_messages())[1:]] == ["3", "4"]
        assert (await store.info()).summary_boundary == 2


async def test_setitem_and_remove_never_touch_another_message_under_concurrent_appends_and_trims(
    redis_url: str,
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=50) as store:
        await store.extend([user_message(f"m{n}") for n in range(50)])
        stop = asyncio.Event()

        async def writer() -> None:
            async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=50) as other:
                n = 50
                while not stop.is_set():
                    await other.append(user_message(f"m{n}"))  # each append trims the oldest
                    n += 1

        task = asyncio.create_task(writer())
        try:
            for round_ in range(40):
                await store.setitem(-1, user_message(f"edited {round_}"))
                newest = await store.getitem(-1)
                assert newest.text.startswith(("edited", "m"))  # never a half-written or foreign entry
                await store.append(user_message(f"doomed {round_}"))
                await store.remove(user_message(f"doomed {round_}"))
        finally:
            stop.set()
            await task
        stored = await texts(store)
        assert len(stored) <= 50
        assert not [t for t in stored if t.startswith("doomed")]  # each was removed, wherever it had moved
        assert len(set(stored)) == len(stored)
        # The index kept up: a group-safe window still reads.
        window = RedisChatMessageStore(redis_url, thread_id="t", context_messages=5)
        assert len(await window.list_messages()) == 5
        await window.aclose()


async def test_a_state_serialized_by_agent_framework_redis_resumes_the_thread(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="user-7") as store:
        await store.append(user_message("hello"))
    # What agent-framework-redis's serialize() returns: its redis_url (password included) is ignored.
    theirs = {
        "type": "redis_store_state",
        "thread_id": "user-7",
        "redis_url": "redis://:secret@elsewhere:6379",
        "key_prefix": "chat_messages",
        "max_messages": None,
    }
    restored = await RedisChatMessageStore.deserialize(theirs, redis_url=redis_url)
    assert restored.thread_id == "user-7"
    assert await texts(restored) == ["hello"]
    assert "secret" not in repr(restored)
    await restored.aclose()


def test_a_credential_provider_with_a_host_connects_as_agent_framework_redis_does() -> None:
    from redis.credentials import UsernamePasswordCredentialProvider

    provider = UsernamePasswordCredentialProvider("user", "pass")
    azure = RedisChatMessageStore(credential_provider=provider, host="cache.example.net", thread_id="t")
    assert "rediss://cache.example.net:6380/0" in repr(azure)  # TLS on 6380, Azure Cache for Redis
    explicit = RedisChatMessageStore(credential_provider=provider, host="h", port=6379, ssl=False, thread_id="t")
    assert "redis://h:6379/0" in repr(explicit)
    plain = RedisChatMessageStore(host="h", thread_id="t")
    assert "redis://h:6379/0" in repr(plain)


@pytest.mark.legacy
async def test_the_same_calls_give_the_same_answers_as_agent_framework_redis(redis_url: str) -> None:
    from agent_framework_redis import RedisChatMessageStore as Upstream  # pyright: ignore[reportMissingImports]

    theirs = Upstream(redis_url=redis_url, thread_id="t", key_prefix="upstream")
    ours = RedisChatMessageStore(redis_url, thread_id="t", key_prefix="ours")

    async def outcome(store: Any, method: str, *args: Any) -> Any:
        try:
            result = await getattr(store, method)(*args)
        except (IndexError, ValueError) as err:
            return type(err).__name__, str(err)
        return result.text if hasattr(result, "text") else result

    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("append", (text("user", "a"),)),
        ("extend", ([text("assistant", "b"), text("user", "a"), text("user", "c")],)),
        ("getitem", (0,)),
        ("getitem", (-1,)),
        ("getitem", (4,)),
        ("getitem", (-5,)),
        ("setitem", (1, text("assistant", "B"))),
        ("setitem", (-1, text("user", "C"))),
        ("setitem", (9, text("user", "x"))),
        ("setitem", (-9, text("user", "x"))),
        ("index", (text("user", "a"),)),
        ("index", (text("user", "C"),)),
        ("index", (text("user", "nope"),)),
        ("remove", (text("user", "a"),)),
        ("remove", (text("user", "nope"),)),
        ("__len__", ()),
        ("count", ()),
    ]
    for method, args in calls:
        assert await outcome(ours, method, *args) == await outcome(theirs, method, *args), method
    assert [m.text for m in await ours.list_messages()] == [m.text for m in await theirs.list_messages()]
    await ours.aclose()
    await theirs.aclose()
