"""Compaction at its limits: ``keep_last_messages=0``.

Real redis-server, real framework objects, the scripted model and the scripted summarizer of
tests/test_long_conversations.py.
"""

from __future__ import annotations

import logging

import pytest

from agent_framework_redis_store import RedisChatMessageStore

from .scripted import ScriptedChatClient, make_agent
from .test_long_conversations import Summarizer, chat, compaction, dicts, messages, turn

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
