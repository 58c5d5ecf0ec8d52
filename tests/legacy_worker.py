"""Run legacy-generation agent turns (``AgentThread`` + ``RedisChatMessageStore``) on one thread.

Used by ``tests/test_cross_generation.py`` as a subprocess in the legacy environment::

    .venv-legacy/bin/python -m tests.legacy_worker '{"redis_url": ..., "thread_id": ..., "turns": [...]}'

Each turn is a user text for the scripted model (``"call add {...}"`` calls the ``add``
tool). Prints JSON: the replies, and every stored message as ``[role, [content types], text]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from agent_framework_redis_store import GENERATION, RedisChatMessageStore

from .scripted import ScriptedChatClient, make_agent


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def describe(messages: list[Any]) -> list[list[Any]]:
    return [[str(getattr(m.role, "value", m.role)), [c.type for c in m.contents], m.text] for m in messages]


async def run_legacy(redis_url: str, thread_id: str, turns: list[str]) -> list[str]:
    from agent_framework import AgentThread, ai_function  # pyright: ignore[reportAttributeAccessIssue]

    agent = make_agent(ScriptedChatClient(), tools=[ai_function(add)])
    async with RedisChatMessageStore(redis_url, thread_id=thread_id) as store:
        thread = AgentThread(message_store=store)
        return [(await agent.run(text, thread=thread)).text for text in turns]


async def main(request: dict[str, Any]) -> dict[str, Any]:
    if GENERATION != "legacy":
        raise SystemExit(f"the legacy worker needs the legacy framework generation, this is {GENERATION}")
    replies = await run_legacy(request["redis_url"], request["thread_id"], request["turns"])
    async with RedisChatMessageStore(request["redis_url"], thread_id=request["thread_id"]) as store:
        stored = describe(await store.list_messages())
    return {"generation": GENERATION, "replies": replies, "stored": stored}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
