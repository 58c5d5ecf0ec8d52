"""The stored encoding: compact entries, exact round trips, and every earlier spelling still read.

A stored message is the framework's ``to_dict()`` less what reads back by itself
(``codec.compact_message``). Earlier versions stored the whole ``to_dict()`` of either
generation; those entries must keep reading exactly as before, in both generations.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio

from agent_framework_redis_store import GENERATION, Keyspace, RedisChatMessageStore
from agent_framework_redis_store._core.codec import compact_message, encode_message, expand_message, message_from_dict
from agent_framework_redis_store._core.compat import framework_message_class

from .test_content_types import MESSAGES

KEYS = Keyspace().thread

# Entries as earlier versions stored them: the whole to_dict(exclude_none=True), compact JSON.
LEGACY_SPELLING = [
    '{"type":"chat_message","role":{"type":"role","value":"user"},"contents":[{"type":"text","text":"hi"}],'
    '"additional_properties":{}}',
    '{"type":"chat_message","role":{"type":"role","value":"assistant"},"contents":[{"type":"function_call",'
    '"call_id":"c1","name":"f","arguments":{"a":1}}],"author_name":"bot","message_id":"m1","additional_properties":{}}',
    '{"type":"chat_message","role":{"type":"role","value":"tool"},"contents":[{"type":"function_result",'
    '"call_id":"c1","result":"ok"}],"additional_properties":{}}',
]
CURRENT_SPELLING = [
    '{"type":"message","role":"user","contents":[{"type":"text","text":"hi","additional_properties":{}}],'
    '"additional_properties":{}}',
    '{"type":"message","role":"assistant","contents":[{"type":"function_call","call_id":"c1","name":"f",'
    '"arguments":{"a":1},"hosted":false,"additional_properties":{}}],"author_name":"bot","message_id":"m1",'
    '"additional_properties":{}}',
    '{"type":"message","role":"tool","contents":[{"type":"function_result","call_id":"c1","result":"ok",'
    '"items":[{"type":"text","text":"ok","additional_properties":{}}],"additional_properties":{}}],'
    '"additional_properties":{}}',
    # A result with items but without a result (built directly, not by from_function_result).
    '{"type":"message","role":"tool","contents":[{"type":"function_result","call_id":"c2",'
    '"items":[{"type":"text","text":"x","additional_properties":{}}],"additional_properties":{}}],'
    '"additional_properties":{}}',
]
OWN_SPELLING = LEGACY_SPELLING if GENERATION == "legacy" else CURRENT_SPELLING


def text(entry: bytes | str) -> str:
    return entry.decode() if isinstance(entry, bytes) else entry


def summary(message: Any) -> tuple[str, list[tuple[Any, ...]]]:
    """What any generation must read from an entry: the role and each content's substance."""
    role = message.role if isinstance(message.role, str) else message.role.value
    return role, [
        (c.type, getattr(c, "text", None), getattr(c, "call_id", None), getattr(c, "result", None))
        for c in message.contents
    ]


async def test_entries_in_full_read_exactly_as_the_framework_reads_them(raw: redis.asyncio.Redis) -> None:
    await raw.rpush(KEYS("old").messages, *OWN_SPELLING)
    async with RedisChatMessageStore(redis_client=raw, thread_id="old") as store:
        loaded = await store.transcript()
    expected = [framework_message_class().from_dict(json.loads(entry)) for entry in OWN_SPELLING]
    assert [m.to_dict() for m in loaded] == [m.to_dict() for m in expected]


@pytest.mark.parametrize("entries", [LEGACY_SPELLING, CURRENT_SPELLING[:3]], ids=["chat_message", "message"])
async def test_either_generation_s_full_entries_read(raw: redis.asyncio.Redis, entries: list[str]) -> None:
    await raw.rpush(KEYS("old").messages, *entries)
    async with RedisChatMessageStore(redis_client=raw, thread_id="old") as store:
        loaded = await store.transcript()
    assert [summary(m) for m in loaded] == [
        ("user", [("text", "hi", None, None)]),
        ("assistant", [("function_call", None, "c1", None)]),
        ("tool", [("function_result", None, "c1", "ok")]),
    ]


async def test_a_message_read_in_full_is_stored_compact_and_reads_back_the_same(raw: redis.asyncio.Redis) -> None:
    await raw.rpush(KEYS("old").messages, *OWN_SPELLING)
    async with RedisChatMessageStore(redis_client=raw, thread_id="old") as old:
        loaded = await old.transcript()
    async with RedisChatMessageStore(redis_client=raw, thread_id="new") as new:
        await new.add_messages(loaded)
        again = await new.transcript()
    assert [m.to_dict() for m in again] == [m.to_dict() for m in loaded]
    stored = [text(e) for e in await raw.lrange(KEYS("new").messages, 0, -1)]
    assert sum(map(len, stored)) < 0.7 * sum(map(len, OWN_SPELLING))
    for entry in stored:
        assert '"additional_properties":{}' not in entry
        assert '"type":"message"' not in entry
        assert '"type":"chat_message"' not in entry
        assert '{"type":"role"' not in entry
    assert stored[0] == '{"role":"user","contents":["hi"]}'


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_compacting_and_expanding_round_trips_every_content_type(kind: str) -> None:
    original = message_from_dict(MESSAGES[kind])
    stored = encode_message(original)
    assert message_from_dict(json.loads(stored)).to_dict() == original.to_dict()
    assert len(stored) < len(json.dumps(original.to_dict(exclude_none=True), separators=(",", ":")))


def test_what_compacting_leaves_out() -> None:
    full = {
        "type": "chat_message",
        "role": {"type": "role", "value": "assistant"},
        "contents": [
            {"type": "text", "text": "plain", "additional_properties": {}},
            {"type": "text", "text": "annotated", "annotations": [{"type": "citation"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": {"additional_properties": {}}},
        ],
        "additional_properties": {},
    }
    assert compact_message(full) == {
        "role": "assistant",
        "contents": [
            "plain",
            {"type": "text", "text": "annotated", "annotations": [{"type": "citation"}]},
            # A call's arguments are the caller's data: never touched.
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": {"additional_properties": {}}},
        ],
    }
    assert compact_message({"role": "user", "contents": [], "additional_properties": {"k": {}}}) == {
        "role": "user",
        "contents": [],
        "additional_properties": {"k": {}},
    }


def test_a_function_result_s_text_is_stored_once() -> None:
    result = {
        "type": "function_result",
        "call_id": "c",
        "result": "a\nb",
        "items": [{"type": "text", "text": "a"}, {"type": "text", "text": ""}, {"type": "text", "text": "b"}],
    }
    compact = compact_message({"role": "tool", "contents": [result]})
    assert compact["contents"] == [{"type": "function_result", "call_id": "c", "items": ["a", "", "b"]}]
    assert expand_message(compact)["contents"] == [result]
    # Items without a result, and a result that is not their text, stay as they were.
    for content in ({k: v for k, v in result.items() if k != "result"}, {**result, "result": "other"}):
        assert expand_message(compact_message({"role": "tool", "contents": [content]}))["contents"] == [content]
    # A result whose items hold no plain text keeps both (and nothing is derived on read).
    data = {"type": "function_result", "call_id": "c", "result": "", "items": [{"type": "data", "uri": "x"}]}
    assert compact_message({"role": "tool", "contents": [data]})["contents"] == [data]
    assert expand_message({"role": "tool", "contents": [{**data, "result": None}]})["contents"] == [
        {**data, "result": None}
    ]


@pytest.mark.current
async def test_current_tool_results_and_calls_round_trip_exactly(redis_url: str) -> None:
    from agent_framework import Content, Message

    messages = [
        Message(role="assistant", contents=[Content.from_function_call(call_id="c", name="f", arguments='{"x":1}')]),
        Message(role="tool", contents=[Content.from_function_result(call_id="c", result="ok")]),
        Message(role="tool", contents=[Content.from_function_result(call_id="c", result={"a": [1, 2]})]),
        Message(role="tool", contents=[Content.from_function_result(call_id="c")]),
        Message(role="tool", contents=[Content("function_result", call_id="c", items=[Content.from_text("x")])]),
        Message(
            role="tool", contents=[Content("function_result", call_id="c", result="y", items=[Content.from_text("x")])]
        ),
        Message(
            role="tool",
            contents=[
                Content.from_function_result(call_id="c", result=[Content.from_text("a"), Content.from_text("b")])
            ],
        ),
        Message(role="assistant", contents=[Content("function_call", call_id="h", name="f", hosted=True)]),
        Message(role="assistant", contents=[Content.from_text("")], author_name="a", message_id="m"),
    ]
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages(messages)
        loaded = await store.transcript()
    assert [m.to_dict() for m in loaded] == [m.to_dict() for m in messages]
