"""Long conversations: group-safe trimming, context windows, repairs on read, persisted summaries.

Real redis-server, real framework messages. A tool-call group is an assistant message with
(parallel) function calls and the tool messages with their results; the model API rejects
a result without its call (OpenAI: HTTP 400), so neither trimming nor a window may cut one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    DecryptionError,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    SummaryCompaction,
)
from agent_framework_redis_store._core.codec import encode_message_dict, message_from_dict

KEYS = Keyspace().thread
ROOT = Path(__file__).resolve().parents[1]


def turn(n: int, *, parallel: int = 2, split_results: bool = False) -> list[dict[str, Any]]:
    """user -> assistant(parallel calls) -> tool result(s) -> assistant text."""
    calls = [
        {"type": "function_call", "call_id": f"c{n}_{i}", "name": "lookup", "arguments": {"n": n, "i": i}}
        for i in range(parallel)
    ]
    results = [{"type": "function_result", "call_id": f"c{n}_{i}", "result": f"r{n}_{i}"} for i in range(parallel)]
    tools = (
        [{"role": "tool", "contents": [result]} for result in results]
        if split_results
        else [{"role": "tool", "contents": results}]
    )
    return [
        {"role": "user", "contents": [{"type": "text", "text": f"question {n}"}]},
        {"role": "assistant", "contents": calls},
        *tools,
        {"role": "assistant", "contents": [{"type": "text", "text": f"answer {n}"}]},
    ]


def chat(n: int) -> list[dict[str, Any]]:
    """A plain exchange: user, assistant."""
    return [
        {"role": "user", "contents": [{"type": "text", "text": f"my fact {n} is f{n}"}]},
        {"role": "assistant", "contents": [{"type": "text", "text": f"noted f{n}"}]},
    ]


def messages(dicts: list[dict[str, Any]]) -> list[Any]:
    return [message_from_dict(d) for d in dicts]


def dicts(loaded: list[Any]) -> list[dict[str, Any]]:
    return [m.to_dict(exclude_none=True) for m in loaded]


def _role(data: dict[str, Any]) -> str:
    role = data["role"]
    return role["value"] if isinstance(role, dict) else role


def assert_well_formed(history: list[dict[str, Any]]) -> None:
    """No result without an earlier call, no call without a later result."""
    called: set[str] = set()
    answered: set[str] = set()
    for message in history:
        for content in message.get("contents", []):
            if content["type"] == "function_call":
                called.add(content["call_id"])
            elif content["type"] == "function_result":
                assert content["call_id"] in called, f"result {content['call_id']} without its call in {history}"
                answered.add(content["call_id"])
    assert called == answered, f"calls without results: {called - answered}"


def continues(message: dict[str, Any]) -> bool:
    return _role(message) == "tool"


def signature(history: list[dict[str, Any]]) -> list[str]:
    """A readable summary of a history: role and first text/call id of each message."""
    out = []
    for message in history:
        content = message["contents"][0]
        out.append(f"{_role(message)}:{content.get('text') or content.get('call_id')}")
    return out


# -- group-safe trimming --------------------------------------------------------------------


@pytest.mark.parametrize("split_results", [False, True], ids=["one-tool-message", "a-tool-message-per-result"])
@pytest.mark.parametrize("max_messages", range(1, 16))
async def test_trimming_never_splits_a_tool_call_group(redis_url: str, max_messages: int, split_results: bool) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=max_messages) as store:
        for n in range(4):
            user, *response = turn(n, split_results=split_results)
            # As the legacy AgentThread saves a turn: the input, then the response.
            for batch in ([user], response):
                await store.add_messages(messages(batch))
                stored = dicts(await store.transcript())
                assert len(stored) <= max_messages
                assert stored == [] or not continues(stored[0]), signature(stored)
                assert_well_formed(stored)
                # Nothing to repair: what is stored is what the model gets.
                assert dicts(await store.list_messages()) == stored


@pytest.mark.current
@pytest.mark.parametrize("max_messages", range(1, 16))
async def test_the_provider_trims_group_safe_too(redis_url: str, max_messages: int) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    async with RedisChatHistoryProvider(redis_url, max_messages=max_messages) as history:
        for n in range(4):
            await history.save_messages("s", messages(turn(n)))
            stored = dicts(await history.transcript("s"))
            assert len(stored) <= max_messages
            assert stored == [] or not continues(stored[0]), signature(stored)
            assert dicts(await history.get_messages("s")) == stored


async def test_a_thread_may_hold_fewer_than_max_messages_never_more(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=3) as store:
        await store.add_messages(messages(turn(0, parallel=2, split_results=True)))
        # user, call, result, result, answer: the newest 3 would start with a result.
        assert signature(dicts(await store.transcript())) == ["assistant:answer 0"]


async def test_a_newest_group_longer_than_max_messages_goes_as_a_group(redis_url: str) -> None:
    user, calls, *results, answer = turn(0, parallel=3, split_results=True)
    async with RedisChatMessageStore(redis_url, thread_id="t", max_messages=3) as store:
        await store.add_messages(messages([user]))
        # The calls and their 3 results (4 messages) arrive before the answer: they cannot stay
        # within 3 messages, and a cut inside them would orphan results: they go together.
        await store.add_messages(messages([calls, *results]))
        assert await store.transcript() == []
        assert await store.count() == 0
        await store.add_messages(messages([answer]))
        assert signature(dicts(await store.transcript())) == ["assistant:answer 0"]
        assert (await store.info()).message_count == 1


# -- context windows ------------------------------------------------------------------------


@pytest.mark.parametrize("window", range(1, 12))
async def test_the_window_is_the_newest_messages_cut_where_a_group_starts(redis_url: str, window: int) -> None:
    history = [m for n in range(4) for m in turn(n, split_results=n % 2 == 1)]
    async with RedisChatMessageStore(redis_url, thread_id="t") as writer:
        await writer.add_messages(messages(history))
    async with RedisChatMessageStore(redis_url, thread_id="t", context_messages=window) as store:
        seen = dicts(await store.list_messages())
        start = len(history) - window
        while continues(history[start]):
            start += 1
        assert seen == dicts(messages(history[start:]))
        assert len(seen) <= window
        assert_well_formed(seen)
        assert len(await store.transcript()) == len(history)  # the log is untouched


@pytest.mark.parametrize("budget", [1, 20, 40, 60, 90, 120, 200, 400, 10_000])
async def test_a_token_window_fits_its_budget(redis_url: str, budget: int) -> None:
    history = [m for n in range(4) for m in turn(n)]
    cost = [max(1, len(encode_message_dict(message_from_dict(m).to_dict(exclude_none=True))) // 4) for m in history]
    async with RedisChatMessageStore(redis_url, thread_id="t", context_tokens=budget) as store:
        await store.add_messages(messages(history))
        seen = dicts(await store.list_messages())
    start, left = len(history), budget
    while start > 0 and cost[start - 1] <= left:
        left -= cost[start - 1]
        start -= 1
    while start < len(history) and continues(history[start]):
        start += 1
    assert seen == dicts(messages(history[start:]))
    assert sum(cost[start:]) <= budget
    assert_well_formed(seen)


class WordTokenizer:
    """One token a JSON token, so counts differ from the default estimate."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())


async def test_a_custom_tokenizer_counts_the_window(redis_url: str) -> None:
    history = [m for n in range(3) for m in chat(n)]
    tokenizer = WordTokenizer()
    cost = [
        tokenizer.count_tokens(encode_message_dict(message_from_dict(m).to_dict(exclude_none=True))) for m in history
    ]
    budget = sum(cost[-3:])
    async with RedisChatMessageStore(redis_url, thread_id="t", context_tokens=budget, tokenizer=tokenizer) as store:
        await store.add_messages(messages(history))
        assert len(await store.list_messages()) == 3
        # A fork counts its copy's tokens with the same tokenizer.
        forked = await store.fork("copy")
    async with RedisChatMessageStore(redis_url, thread_id=forked, context_tokens=budget, tokenizer=tokenizer) as copy:
        assert len(await copy.list_messages()) == 3


async def test_a_window_decodes_nothing_outside_it(redis_url: str, raw: redis.asyncio.Redis) -> None:
    # A damaged entry far back in the thread: a windowed read never touches it.
    await raw.rpush(KEYS("t").messages, b"not json")
    async with RedisChatMessageStore(redis_url, thread_id="t", context_messages=4, context_tokens=500) as store:
        await store.add_messages(messages([m for n in range(30) for m in chat(n)]))
        assert [m.text for m in await store.list_messages()] == [
            "my fact 28 is f28",
            "noted f28",
            "my fact 29 is f29",
            "noted f29",
        ]
        with pytest.raises(Exception, match="index 0"):
            await store.transcript()


async def test_a_token_window_over_history_without_an_index_counts_on_the_client(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    # Written before this version: no index. The window is still right.
    payloads = [encode_message_dict(message_from_dict(m).to_dict(exclude_none=True)) for n in range(5) for m in chat(n)]
    await raw.rpush(KEYS("old").messages, *payloads)
    async with RedisChatMessageStore(redis_url, thread_id="old", context_tokens=60) as store:
        seen = [m.text for m in await store.list_messages()]
    cost = [max(1, len(p) // 4) for p in payloads]
    fitting = 0
    while fitting < len(cost) and sum(cost[len(cost) - fitting - 1 :]) <= 60:
        fitting += 1
    assert len(seen) == fitting
    assert seen[-1] == "noted f4"


# -- repairs on read ------------------------------------------------------------------------


async def test_history_written_without_group_safety_is_repaired_on_read(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    # As an older version (or another writer) could leave a thread: trimmed into a group, and a
    # call that was never answered although the conversation went on.
    old = [
        {"role": "tool", "contents": [{"type": "function_result", "call_id": "gone", "result": "orphan"}]},
        {"role": "assistant", "contents": [{"type": "text", "text": "earlier answer"}]},
        {"role": "user", "contents": [{"type": "text", "text": "do it"}]},
        {
            "role": "assistant",
            "contents": [
                {"type": "text", "text": "calling"},
                {"type": "function_call", "call_id": "abandoned", "name": "f", "arguments": {}},
            ],
        },
        {"role": "user", "contents": [{"type": "text", "text": "never mind"}]},
        {"role": "assistant", "contents": [{"type": "text", "text": "ok"}]},
        {"role": "user", "contents": [{"type": "text", "text": "now this"}]},
        {
            "role": "assistant",
            "contents": [{"type": "function_call", "call_id": "pending", "name": "f", "arguments": {}}],
        },
    ]
    await raw.rpush(KEYS("t").messages, *(encode_message_dict(m) for m in old))
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        seen = dicts(await store.list_messages())
        assert signature(seen) == [
            "assistant:earlier answer",
            "user:do it",
            "assistant:calling",  # its text kept, the abandoned call removed
            "user:never mind",
            "assistant:ok",
            "user:now this",
            "assistant:pending",  # the newest call may still be answered: kept
        ]
        assert seen[2]["contents"] == [{"type": "text", "text": "calling"}] or len(seen[2]["contents"]) == 1
        assert len(await store.transcript()) == len(old)  # the stored log is unchanged


# -- summaries ------------------------------------------------------------------------------


class Summarizer:
    """A chat client whose summary is the transcript it was sent, so tests see its input."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.fail: Exception | None = None
        self.hang = False

    async def get_response(self, request: Any) -> Any:
        _system, user = request
        self.prompts.append(user.text)
        if self.fail is not None:
            raise self.fail
        if self.hang:
            await asyncio.Event().wait()
        lines = [line for line in user.text.splitlines() if line.startswith("[user]")]
        previous = (
            user.text.split("\n\n")[0].removeprefix("Previous summary:\n") if "Previous summary" in user.text else ""
        )
        return SimpleNamespace(text=" / ".join(filter(None, [previous, *(line[7:] for line in lines)])))


def compaction(summarizer: Summarizer, **options: Any) -> SummaryCompaction:
    options = {"trigger_messages": 6, "keep_last_messages": 2, **options}
    return SummaryCompaction(summarizer, **options)


async def test_compact_persists_a_summary_and_keeps_the_transcript(redis_url: str, raw: redis.asyncio.Redis) -> None:
    summarizer = Summarizer()
    policy = compaction(summarizer, background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy) as store:
        await store.add_messages(messages([m for n in range(4) for m in chat(n)]))  # 8 > 6
        result = await store.compact()
        assert (result.compacted, result.summarized, result.boundary) == (True, 6, 6)
        seen = await store.list_messages()
        assert (
            seen[0].text == "Summary of the earlier conversation: my fact 0 is f0 / my fact 1 is f1 / my fact 2 is f2"
        )
        assert [m.text for m in seen[1:]] == ["my fact 3 is f3", "noted f3"]
        assert len(await store.transcript()) == 8
        assert (await store.compact()).reason == "not due"

        # The next compaction summarizes the previous summary with what came after it.
        await store.add_messages(messages([m for n in range(4, 7) for m in chat(n)]))
        assert (await store.compact()).compacted
        seen = await store.list_messages()
        assert seen[0].text.endswith("my fact 2 is f2 / my fact 3 is f3 / my fact 4 is f4 / my fact 5 is f5")
        assert "Previous summary" in summarizer.prompts[-1]
        assert [m.text for m in seen[1:]] == ["my fact 6 is f6", "noted f6"]
    # The summary is the meta hash's and expires with the thread.
    assert await raw.hget(KEYS("t").meta, "boundary") == b"12"


async def test_a_summary_survives_trimming_and_windows_count_it(redis_url: str) -> None:
    summarizer = Summarizer()
    policy = compaction(summarizer, background=False)
    options: dict[str, Any] = {"thread_id": "t", "compaction": policy, "max_messages": 10}
    async with RedisChatMessageStore(redis_url, **options) as store:
        await store.add_messages(messages([m for n in range(4) for m in chat(n)]))
        await store.compact()
        await store.add_messages(messages([m for n in range(4, 8) for m in chat(n)]))  # trims 6 of 16
        seen = await store.list_messages()
        assert seen[0].text.startswith("Summary of the earlier conversation: my fact 0")
        # After the boundary (6) every message is still stored: 6..15, ten of them.
        assert [m.text for m in seen[1:3]] == ["my fact 3 is f3", "noted f3"]
        assert len(seen) == 11
    async with RedisChatMessageStore(redis_url, thread_id="t", context_messages=4) as windowed:
        assert [m.text for m in (await windowed.list_messages())[1:]] == [
            "my fact 6 is f6",
            "noted f6",
            "my fact 7 is f7",
            "noted f7",
        ]


async def test_compaction_runs_in_the_background_after_a_turn_and_aclose_waits(redis_url: str) -> None:
    summarizer = Summarizer()
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=compaction(summarizer)) as store:
        for n in range(4):
            await store.list_messages()  # what an agent does before each turn
            await store.add_messages(messages(chat(n)))
    async with RedisChatMessageStore(redis_url, thread_id="t") as reader:
        seen = await reader.list_messages()
    assert seen[0].text.startswith("Summary of the earlier conversation: my fact 0 is f0")
    assert len(summarizer.prompts) == 1


async def test_a_failing_summarizer_leaves_the_thread_and_is_retried_after_the_next_turn(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    summarizer = Summarizer()
    summarizer.fail = RuntimeError("model unavailable")
    with caplog.at_level(logging.WARNING, logger="agent_framework_redis_store"):
        async with RedisChatMessageStore(redis_url, thread_id="t", compaction=compaction(summarizer)) as store:
            await store.add_messages(messages([m for n in range(4) for m in chat(n)]))  # the turn succeeds
    assert "summarizing thread 't' failed (RuntimeError: model unavailable)" in caplog.text
    assert "my fact" not in caplog.text  # never the conversation
    async with RedisChatMessageStore(redis_url, thread_id="t") as reader:
        assert len(await reader.list_messages()) == 8  # as it was

    summarizer.fail = None
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=compaction(summarizer)) as store:
        await store.add_messages(messages(chat(4)))
    async with RedisChatMessageStore(redis_url, thread_id="t") as reader:
        assert (await reader.list_messages())[0].text.startswith("Summary of the earlier conversation")


async def test_a_hanging_summarizer_times_out_and_the_turn_never_waits(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    summarizer = Summarizer()
    summarizer.hang = True
    policy = compaction(summarizer, timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="agent_framework_redis_store"):
        async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy) as store:
            await store.add_messages(messages([m for n in range(4) for m in chat(n)]))
            # The turn is saved and returns while the summarizer hangs.
            assert len(await store.list_messages()) == 8
    assert "TimeoutError" in caplog.text
    async with RedisChatMessageStore(redis_url, thread_id="t") as reader:
        assert len(await reader.list_messages()) == 8


async def test_only_one_instance_summarizes_a_thread_at_a_time(redis_url: str, raw: redis.asyncio.Redis) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    class Slow(Summarizer):
        async def get_response(self, request: Any) -> Any:
            started.set()
            await release.wait()
            return await super().get_response(request)

    async with RedisChatMessageStore(redis_url, thread_id="t") as writer:
        await writer.add_messages(messages([m for n in range(4) for m in chat(n)]))
    first = RedisChatMessageStore(redis_url, thread_id="t", compaction=compaction(Slow(), background=False))
    second = RedisChatMessageStore(redis_url, thread_id="t", compaction=compaction(Summarizer(), background=False))
    running = asyncio.create_task(first.compact())
    await started.wait()
    assert (await second.compact()).reason == "another instance is compacting this thread"

    # Had the lease expired, the second would summarize; then the first's commit is refused.
    await raw.delete(KEYS("t").compacting)
    assert (await second.compact()).compacted
    release.set()
    assert (await running).reason == "the thread changed meanwhile"
    seen = await second.list_messages()
    assert seen[0].text.startswith("Summary of the earlier conversation: my fact 0")
    assert len(seen) == 3
    await first.aclose()
    await second.aclose()


async def slow_compaction_then(
    redis_url: str, meanwhile: Any, **store_options: Any
) -> tuple[RedisChatMessageStore, Any]:
    """Start a compaction held inside its summarizer, run ``meanwhile(store)``, let it finish."""
    started, release = asyncio.Event(), asyncio.Event()

    class Slow(Summarizer):
        async def get_response(self, request: Any) -> Any:
            started.set()
            await release.wait()
            return await super().get_response(request)

    store = RedisChatMessageStore(
        redis_url, thread_id="t", compaction=compaction(Slow(), background=False), **store_options
    )
    await store.add_messages(messages([m for n in range(4) for m in chat(n)]))
    running = asyncio.create_task(store.compact())
    await started.wait()
    await meanwhile(store)
    release.set()
    return store, await running


async def test_a_summary_of_a_cleared_thread_is_never_committed_to_its_successor(redis_url: str) -> None:
    async def clear_and_start_again(store: RedisChatMessageStore) -> None:
        await store.clear()
        await store.add_messages(messages([m for n in range(10, 14) for m in chat(n)]))

    store, result = await slow_compaction_then(redis_url, clear_and_start_again)
    assert (result.compacted, result.reason) == (False, "the thread changed meanwhile")
    assert [m.text for m in await store.list_messages()][:2] == ["my fact 10 is f10", "noted f10"]
    assert (await store.compact()).compacted  # the new conversation compacts on its own
    assert "f10" in (await store.list_messages())[0].text
    await store.aclose()


async def test_an_entry_removed_during_a_compaction_cancels_its_commit(redis_url: str) -> None:
    async def remove_one(store: RedisChatMessageStore) -> None:
        await store.remove((await store.transcript())[7])

    store, result = await slow_compaction_then(redis_url, remove_one)
    assert (result.compacted, result.reason) == (False, "the thread changed meanwhile")
    assert len(await store.list_messages()) == 7  # no summary: every message still shown
    assert (await store.compact(force=True)).compacted
    await store.aclose()


async def test_a_summary_without_the_registry_expires_with_the_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    policy = compaction(Summarizer(), background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", registry=False, ttl=600, compaction=policy) as store:
        await store.add_messages(messages([m for n in range(4) for m in chat(n)]))
        assert (await store.compact()).compacted
    keys = KEYS("t")
    assert await raw.hget(keys.meta, "summary")
    assert 0 < await raw.pttl(keys.meta) <= await raw.pttl(keys.messages) + 1000


async def test_two_processes_compacting_one_thread_store_one_summary(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as writer:
        await writer.add_messages(messages([m for n in range(4) for m in chat(n)]))

    async def start(name: str, *, wait: bool) -> asyncio.subprocess.Process:
        request = json.dumps({"redis_url": redis_url, "thread_id": "t", "name": name, "wait": wait})
        command = [sys.executable, "-m", "tests.compaction_worker", request]
        return await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, cwd=ROOT)

    async def result(process: asyncio.subprocess.Process) -> dict[str, Any]:
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0
        return json.loads(out)

    # A summarizes and is held inside its summarizer; B meanwhile finds the thread taken.
    a = await start("a", wait=True)
    # A blocking read outlives redis-py's default socket timeout (5 s) while a process starts on a busy machine.
    async with redis.asyncio.Redis.from_url(redis_url, socket_timeout=60) as waiter:
        assert await waiter.blpop(["test:started"], timeout=30) == (b"test:started", b"a")  # type: ignore[misc]
    assert (await result(await start("b", wait=False)))["reason"] == "another instance is compacting this thread"
    # A's lease runs out (as if A stalled past its timeout): C summarizes and commits first.
    await raw.delete(KEYS("t").compacting)
    assert (await result(await start("c", wait=False)))["compacted"] is True
    await raw.rpush("test:go:a", "go")  # type: ignore[misc]
    assert (await result(a))["reason"] == "the thread changed meanwhile"

    async with RedisChatMessageStore(redis_url, thread_id="t") as reader:
        seen = [m.text for m in await reader.list_messages()]
        assert seen == ["Summary of the earlier conversation: summary by c", "my fact 3 is f3", "noted f3"]
        assert len(await reader.transcript()) == 8  # nothing lost


async def test_an_undecryptable_summary_is_named(redis_url: str) -> None:
    k1 = AESGCMEncryption({"k1": b"1" * 32}, current="k1")
    other = AESGCMEncryption({"k1": b"2" * 32}, current="k1")
    policy = compaction(Summarizer(), background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy, encryption=k1) as store:
        await store.add_messages(messages([m for n in range(4) for m in chat(n)]))
        assert (await store.compact()).compacted
        assert (await store.list_messages())[0].text.startswith("Summary")
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=other) as wrong:
        with pytest.raises(DecryptionError, match=r"chat_messages:\{t\}:meta#summary"):
            await wrong.list_messages()


async def test_export_and_import_carry_the_summary(redis_url: str) -> None:
    policy = compaction(Summarizer(), background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy, max_messages=7) as store:
        await store.add_messages(messages([m for n in range(4) for m in chat(n)]))  # 8, trimmed to 7
        assert (await store.compact()).compacted
        expected = dicts(await store.list_messages())
    async with RedisThreadRegistry(redis_url) as registry:
        record = await registry.export_thread("t")
        assert record.summary is not None
        assert record.summary_covers == 5  # 6 summarized, 1 of them trimmed before the export
        line = record.to_json()
    async with RedisThreadRegistry(redis_url, key_prefix="copy") as registry:
        await registry.import_thread(type(record).from_json(line))
    async with RedisChatMessageStore(redis_url, thread_id="t", key_prefix="copy") as copy:
        assert dicts(await copy.list_messages()) == expected


async def test_summaries_follow_rekey(redis_url: str, raw: redis.asyncio.Redis) -> None:
    k1 = AESGCMEncryption({"k1": b"1" * 32}, current="k1")
    rotated = AESGCMEncryption({"k2": b"2" * 32, "k1": b"1" * 32}, current="k2")
    policy = compaction(Summarizer(), background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy, encryption=k1) as store:
        await store.add_messages(messages([m for n in range(4) for m in chat(n)]))
        await store.compact()
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=rotated) as store:
        assert await store.rekey() == 9  # eight messages and the summary
    summary = await raw.hget(KEYS("t").meta, "summary")  # type: ignore[misc]
    assert isinstance(summary, bytes)
    assert summary.startswith(b"aesgcm1:k2:")


def test_summary_compaction_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="client must be a chat client"):
        SummaryCompaction(object(), trigger_messages=5)
    with pytest.raises(ValueError, match="give trigger_messages or trigger_tokens"):
        SummaryCompaction(Summarizer())
    with pytest.raises(ValueError, match=r"keep_last_messages \(5\) must be less than trigger_messages \(5\)"):
        SummaryCompaction(Summarizer(), trigger_messages=5, keep_last_messages=5)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        SummaryCompaction(Summarizer(), trigger_messages=50, timeout=0)
    with pytest.raises(ValueError, match="compact\\(\\) needs a store created with compaction"):
        asyncio.run(RedisChatMessageStore("redis://127.0.0.1:1", thread_id="t").compact())


@pytest.mark.parametrize(
    ("option", "value", "error", "fragment"),
    [
        ("context_messages", 0, ValueError, "context_messages must be at least 1"),
        ("context_tokens", "many", TypeError, "context_tokens must be an int"),
        ("tokenizer", object(), TypeError, "tokenizer must have a count_tokens"),
        ("compaction", "summarize", TypeError, "compaction must be a SummaryCompaction"),
    ],
)
def test_bad_window_options_are_named(option: str, value: Any, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        RedisChatMessageStore("redis://127.0.0.1:1", **{option: value})


@pytest.mark.current
async def test_the_provider_compacts_sessions_and_hands_the_model_the_summary(redis_url: str) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    from .scripted import ScriptedChatClient, make_agent

    summarizer = Summarizer()
    async with RedisChatHistoryProvider(redis_url, compaction=compaction(summarizer), context_messages=4) as history:
        model = ScriptedChatClient()
        agent = make_agent(model, context_providers=[history])
        session = agent.create_session(session_id="s")
        for n in range(5):
            await agent.run(f"my fact {n} is f{n}", session=session)
        assert (await history.compact("s", force=True)).reason in {"compacted", "nothing to summarize"}
        await agent.run("what do you know?", session=session)
        sent = model.recorder.requests[-1]
        texts = [m.text for m in sent]
        assert any(t.startswith("Summary of the earlier conversation: my fact 0 is f0") for t in texts)
        assert len(await history.transcript("s")) == 12
    assert json.dumps(texts)  # the request was plain JSON-able text
