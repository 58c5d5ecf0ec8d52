"""Every content type round-trips exactly through Redis, in either generation."""

from __future__ import annotations

from typing import Any

import pytest

from agent_framework_redis_store import RedisChatMessageStore
from agent_framework_redis_store._core.codec import encode_message, message_from_dict

_CALL = {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": {"city": "Paris", "n": [1, 2]}}

# Written in the legacy spelling; the codec reads it in both generations.
MESSAGES: dict[str, dict[str, Any]] = {
    "text": {
        "type": "chat_message",
        "role": {"type": "role", "value": "user"},
        "contents": [{"type": "text", "text": "héllo ✓\nline two"}],
        "author_name": "alice",
        "message_id": "msg-1",
    },
    "function_call": {"role": {"type": "role", "value": "assistant"}, "contents": [_CALL]},
    "function_result": {
        "role": {"type": "role", "value": "tool"},
        "contents": [{"type": "function_result", "call_id": "c1", "result": {"temp": 21, "sky": "clear"}}],
    },
    "approval_request": {
        "role": {"type": "role", "value": "assistant"},
        "contents": [{"type": "function_approval_request", "id": "r1", "function_call": _CALL}],
    },
    "approval_response": {
        "role": {"type": "role", "value": "user"},
        "contents": [{"type": "function_approval_response", "id": "r1", "approved": False, "function_call": _CALL}],
    },
    "usage": {
        "role": {"type": "role", "value": "assistant"},
        "contents": [
            {
                "type": "usage",
                "details": {
                    "type": "usage_details",
                    "input_token_count": 12,
                    "output_token_count": 30,
                    "total_token_count": 42,
                },
            }
        ],
    },
    "additional_properties": {
        "role": {"type": "role", "value": "assistant"},
        "contents": [{"type": "text", "text": "with extras"}],
        "message_id": "msg-2",
        "additional_properties": {"trace": {"id": "abc", "spans": [1, 2, 3]}, "flag": True, "none": None},
    },
    "reasoning_data_uri_error": {
        "role": {"type": "role", "value": "assistant"},
        "contents": [
            {"type": "text_reasoning", "text": "thinking"},
            {
                "type": "data",
                "uri": "data:application/octet-stream;base64,YWJj",
                "media_type": "application/octet-stream",
            },
            {"type": "uri", "uri": "https://example.com/cat.png", "media_type": "image/png"},
            {"type": "error", "message": "tool failed"},
        ],
    },
}


@pytest.mark.parametrize("kind", list(MESSAGES))
async def test_content_round_trips_exactly(redis_url: str, kind: str) -> None:
    original = message_from_dict(MESSAGES[kind])
    async with RedisChatMessageStore(redis_url, thread_id=kind) as store:
        await store.add_messages([original])
        [loaded] = await store.transcript()  # the stored log, exactly (list_messages repairs lone results)
    assert loaded.to_dict() == original.to_dict()
    assert encode_message(loaded) == encode_message(original)


async def test_ids_and_properties_survive(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([message_from_dict(MESSAGES["additional_properties"])])
        [loaded] = await store.list_messages()
    assert loaded.message_id == "msg-2"
    assert loaded.additional_properties["trace"] == {"id": "abc", "spans": [1, 2, 3]}


async def test_function_call_arguments_survive(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as store:
        await store.add_messages([message_from_dict(MESSAGES["approval_request"])])
        [loaded] = await store.list_messages()
    [request] = loaded.contents
    assert request.function_call.arguments == {"city": "Paris", "n": [1, 2]}  # type: ignore[union-attr]
