"""Compaction at its limits: ``keep_last_messages=0``, and a summarizer slower than the conversation.

Real redis-server, real framework objects, the scripted model and the scripted summarizer of
tests/test_long_conversations.py. A summary that is late must never let the request grow
without bound: without a window of the store's own, the model gets the summary and at most
twice ``trigger_messages`` (``trigger_tokens``) after it, cut where a tool-call group starts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import GENERATION, Keyspace, RedisChatMessageStore
from agent_framework_redis_store._core.codec import encode_message_dict, message_from_dict

from .scripted import ScriptedChatClient, make_agent, role_of
from .test_long_conversations import (
    Summarizer,
    assert_well_formed,
    chat,
    compaction,
    continues,
    dicts,
    messages,
    turn,
)

KEYS = Keyspace().thread
SUMMARY = "Summary of the earlier conversation: "


# -- keep_last_messages=0 -------------------------------------------------------------------


async def test_keep_last_0_summarizes_every_message(redis_url: str) -> None:
    policy = compaction(Summarizer(), keep_last_messages=0, background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy) as store:
        await store.add_messages(messages([m for n in range(4) for m in chat(n)]))  # 8 > 6
        result = await store.compact()
        assert (result.compacted, result.summarized, result.boundary) == (True, 8, 8)
        seen = await store.list_messages()
        assert [m.text for m in seen] == [
            SUMMARY + "my fact 0 is f0 / my fact 1 is f1 / my fact 2 is f2 / my fact 3 is f3"
        ]
        # The context is then the summary and what came after it.
        await store.add_messages(messages(chat(4)))
        assert [m.text for m in (await store.list_messages())[1:]] == ["my fact 4 is f4", "noted f4"]
        assert len(await store.transcript()) == 10


async def test_keep_last_0_in_the_background_stores_a_summary_and_warns_nothing(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    policy = compaction(Summarizer(), keep_last_messages=0)
    with caplog.at_level(logging.WARNING, logger="agent_framework_redis_store"):
        async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy) as store:
            for n in range(4):
                await store.list_messages()
                await store.add_messages(messages(chat(n)))
    assert caplog.text == ""
    async with RedisChatMessageStore(redis_url, thread_id="t") as reader:
        assert [m.text for m in await reader.list_messages()] == [
            SUMMARY + "my fact 0 is f0 / my fact 1 is f1 / my fact 2 is f2 / my fact 3 is f3"
        ]


async def test_keep_last_0_keeps_a_call_still_awaiting_its_result(redis_url: str) -> None:
    # The newest group is a call not answered yet (an approval the user has yet to give): its
    # result would arrive without it, so it stays; everything before it is summarized.
    user, calls, *_ = turn(4)
    policy = compaction(Summarizer(), keep_last_messages=0, background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy) as store:
        await store.add_messages(messages([*(m for n in range(3) for m in chat(n)), user, calls]))
        result = await store.compact()
        assert (result.compacted, result.summarized) == (True, 7)
        seen = dicts(await store.list_messages())
        assert seen[0]["contents"][0]["text"].endswith("my fact 2 is f2 / question 4")
        assert seen[1:] == dicts(messages([calls]))


@pytest.mark.current
async def test_keep_last_0_through_the_provider(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    policy = compaction(Summarizer(), trigger_messages=4, keep_last_messages=0)
    with caplog.at_level(logging.WARNING, logger="agent_framework_redis_store"):
        async with RedisChatHistoryProvider(redis_url, compaction=policy) as history:
            model = ScriptedChatClient()
            agent = make_agent(model, context_providers=[history])
            session = agent.create_session(session_id="s")
            for n in range(3):
                await agent.run(f"my fact {n} is f{n}", session=session)
            await history.wait_for_compaction()
            await agent.run("what do you know?", session=session)
            sent = [m.text for m in model.recorder.requests[-1] if str(m.role) != "system"]
    assert caplog.text == ""
    assert sent == [SUMMARY + "my fact 0 is f0 / my fact 1 is f1 / my fact 2 is f2", "what do you know?"]


# -- a summarizer slower than the conversation ------------------------------------------------


class Gated(Summarizer):
    """Answers at once while ``open``; once closed, each call waits for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.open = True
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()

    async def get_response(self, request: Any) -> Any:
        if not self.open:
            self.waiting.set()
            await self.release.wait()
        return await super().get_response(request)


def turn_text(n: int) -> str:
    """Every other turn calls a tool (four messages), the rest are plain (two)."""
    return f'call add {{"a": {n}, "b": 1}}' if n % 2 else f"my fact {n} is f{n}"


def check_request(request: list[Any], ceiling: int) -> str:
    """The request's history is the summary, then at most ``ceiling`` messages; nothing orphaned.

    Returns the summary's text.
    """
    sent = [m for m in request if role_of(m) != "system"]
    assert_well_formed([m.to_dict(exclude_none=True) for m in sent])
    texts = [m.text or "" for m in sent]
    assert texts[0].startswith(SUMMARY), texts
    assert not any(t.startswith(SUMMARY) for t in texts[1:]), texts
    # After the history comes what this turn added: its input (and a tool turn's call and result).
    newest_input = max(i for i, m in enumerate(sent) if role_of(m) == "user")
    assert newest_input - 1 <= ceiling, texts
    return texts[0]


async def run_while_the_summarizer_is_late(
    model: Any, run: Any, wait_for_compaction: Any, summarizer: Gated, raw: redis.asyncio.Redis, thread_id: str
) -> None:
    """Turns until a first summary lands, 16 more while the next one is held, then its release."""
    keys = KEYS(thread_id)
    for n in range(3):
        await run(turn_text(n))
    await wait_for_compaction()
    assert await raw.hget(keys.meta, "boundary")  # type: ignore[misc]
    summarizer.open = False
    first = len(model.recorder.requests)
    for n in range(3, 19):
        await run(turn_text(n))
    await asyncio.wait_for(summarizer.waiting.wait(), 30)  # the next compaction is held
    boundary = int(await raw.hget(keys.meta, "boundary"))  # type: ignore[misc]
    stored = int(await raw.llen(keys.messages))  # type: ignore[misc]
    assert stored - boundary > 3 * 8  # without a ceiling the requests would have held them all
    for request in model.recorder.requests[first:]:
        check_request(request, ceiling=8)

    summarizer.release.set()
    await wait_for_compaction()
    assert int(await raw.hget(keys.meta, "boundary")) == stored - 2  # type: ignore[misc]
    await run("what do you know?")
    assert "my fact 16 is f16" in check_request(model.recorder.requests[-1], ceiling=8)


def add_tool() -> Any:
    if GENERATION == "legacy":
        from agent_framework import ai_function  # pyright: ignore[reportAttributeAccessIssue]

        decorate: Any = ai_function
    else:
        from agent_framework import tool

        decorate = tool

    @decorate
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    return add


@pytest.mark.legacy
async def test_a_late_summary_never_lets_the_request_grow_legacy(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework import AgentThread  # pyright: ignore[reportAttributeAccessIssue]

    summarizer = Gated()
    policy = compaction(summarizer, trigger_messages=4, keep_last_messages=2)
    model = ScriptedChatClient()
    agent = make_agent(model, tools=[add_tool()])
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy) as store:
        thread = AgentThread(message_store=store)

        async def run(text: str) -> None:
            await agent.run(text, thread=thread)

        await run_while_the_summarizer_is_late(model, run, store.wait_for_compaction, summarizer, raw, "t")


@pytest.mark.current
async def test_a_late_summary_never_lets_the_request_grow_current(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    summarizer = Gated()
    policy = compaction(summarizer, trigger_messages=4, keep_last_messages=2)
    model = ScriptedChatClient()
    async with RedisChatHistoryProvider(redis_url, compaction=policy) as history:
        agent = make_agent(model, context_providers=[history], tools=[add_tool()])
        session = agent.create_session(session_id="s")

        async def run(text: str) -> None:
            await agent.run(text, session=session)

        await run_while_the_summarizer_is_late(model, run, history.wait_for_compaction, summarizer, raw, "s")


async def test_the_token_ceiling_and_a_window_of_the_stores_own(redis_url: str) -> None:
    history = [m for n in range(6) for m in turn(n)]
    cost = [max(1, len(encode_message_dict(message_from_dict(m).to_dict(exclude_none=True))) // 4) for m in history]
    policy = compaction(Summarizer(), trigger_messages=None, trigger_tokens=100, background=False)
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy) as store:
        await store.add_messages(messages(history))
        seen = dicts(await store.list_messages())  # no summary yet: the newest that fit 200 tokens
    start, left = len(history), 200
    while start > 0 and cost[start - 1] <= left:
        left -= cost[start - 1]
        start -= 1
    while continues(history[start]):
        start += 1
    assert start > 0
    assert seen == dicts(messages(history[start:]))
    assert_well_formed(seen)
    # A window of the store's own replaces the ceiling.
    async with RedisChatMessageStore(redis_url, thread_id="t", compaction=policy, context_messages=20) as store:
        assert len(await store.list_messages()) == 20
