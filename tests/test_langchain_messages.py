"""LangChain message dicts <-> Agent Framework message dicts (``agent_framework_redis_store.langchain``).

No Redis: the conversion that the history and importers of LangChain histories share,
checked against what langchain-core writes and through the installed framework
generation's own message class.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import agent_framework as af
import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

from agent_framework_redis_store.langchain import (
    LANGCHAIN_PROPERTY,
    RedisChatMessageHistory,
    RedisChatMessageHistoryFactory,
    from_langchain_dict,
    to_langchain_dicts,
)

from .scripted import role_of

MESSAGE_CLASS: Any = getattr(af, "ChatMessage", None) or af.Message


def framework_message(data: dict[str, Any]) -> Any:
    """A message of the installed generation from a dict (role as a str reads in both)."""
    return MESSAGE_CLASS.from_dict(data)


def weather_turns() -> list[BaseMessage]:
    """A LangChain conversation with a tool call, as message_to_dict shows it in the research notes."""
    return [
        SystemMessage("be nice"),
        HumanMessage("Weather in Paris?", id="h1"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}]),
        ToolMessage("sunny", tool_call_id="call_1", name="get_weather"),
        AIMessage("It is sunny in Paris."),
    ]


# What langchain-core 1.8 writes with message_to_dict (research notes, section 2).
NOTES_LINES = [
    '{"type": "system", "data": {"content": "be nice", "additional_kwargs": {}, "response_metadata": {}, '
    '"type": "system", "name": null, "id": null}}',
    '{"type": "human", "data": {"content": "hi", "additional_kwargs": {}, "response_metadata": {}, "type": "human", '
    '"name": null, "id": "h1"}}',
    '{"type": "ai", "data": {"content": "", "additional_kwargs": {}, "response_metadata": {}, "type": "ai", '
    '"name": null, "id": null, "tool_calls": [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", '
    '"type": "tool_call"}], "invalid_tool_calls": [], "usage_metadata": null}}',
    '{"type": "tool", "data": {"content": "sunny", "additional_kwargs": {}, "response_metadata": {}, "type": "tool", '
    '"name": "get_weather", "id": null, "tool_call_id": "call_1", "artifact": null, "status": "success"}}',
]


def test_message_to_dict_lines_become_framework_message_dicts() -> None:
    converted = [from_langchain_dict(json.loads(line)) for line in NOTES_LINES]
    assert converted == [
        {"role": "system", "contents": [{"type": "text", "text": "be nice"}]},
        {"role": "user", "contents": [{"type": "text", "text": "hi"}], "message_id": "h1"},
        {
            "role": "assistant",
            "contents": [
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
            ],
        },
        {
            "role": "tool",
            "contents": [{"type": "function_result", "call_id": "call_1", "result": "sunny"}],
            "author_name": "get_weather",
        },
    ]
    # ... which read back as the very same LangChain dicts.
    for line, message in zip(NOTES_LINES, converted, strict=True):
        assert to_langchain_dicts(message) == [json.loads(line)]


ROUND_TRIPS: list[BaseMessage] = [
    *weather_turns(),
    HumanMessage("I am Alice", name="alice", id="u7"),
    AIMessage(
        "Let me check.",
        id="run-1",
        name="bot",
        tool_calls=[
            {"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"},
            {"name": "lookup", "args": {}, "id": "c2"},
        ],
        invalid_tool_calls=[{"name": "broken", "args": "{not json", "id": "c3", "error": None}],
        additional_kwargs={"refusal": None, "custom": [1, 2]},
        response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
        usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
    ),
    ToolMessage("boom", tool_call_id="c2", status="error", artifact={"trace": [1]}),
    ToolMessage([{"type": "text", "text": "5"}], tool_call_id="c1"),
    HumanMessage(
        [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ]
    ),
    ChatMessage(content="Looks fine to me.", role="critic"),
    HumanMessage(""),
]


@pytest.mark.parametrize("message", ROUND_TRIPS, ids=lambda m: f"{m.type}:{str(m.content)[:20]}")
def test_a_langchain_message_survives_the_framework_message(message: BaseMessage) -> None:
    data = from_langchain_dict(message_to_dict(message))
    # Through the installed framework generation's own message class, as the store keeps it.
    stored = framework_message(data).to_dict()
    assert messages_from_dict(to_langchain_dicts(stored)) == [message]


def test_the_framework_sees_text_tool_calls_and_results() -> None:
    ai = framework_message(from_langchain_dict(message_to_dict(ROUND_TRIPS[6])))
    assert (role_of(ai), ai.text) == ("assistant", "Let me check.")
    calls = [c for c in ai.contents if c.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("c1", "add", {"a": 2, "b": 3}),
        ("c2", "lookup", {}),
        ("c3", "broken", "{not json"),
    ]
    failed = framework_message(from_langchain_dict(message_to_dict(ROUND_TRIPS[7])))
    (result,) = failed.contents
    assert (role_of(failed), result.type, result.call_id, result.result) == ("tool", "function_result", "c2", "boom")
    assert result.exception
    picture = framework_message(from_langchain_dict(message_to_dict(ROUND_TRIPS[9])))
    assert picture.text == "What is in this picture?"
    assert picture.additional_properties[LANGCHAIN_PROPERTY]["content"][1]["type"] == "image_url"


def test_old_langchain_tool_calls_in_additional_kwargs_become_function_calls() -> None:
    old = {
        "type": "ai",
        "data": {
            "content": "",
            "example": False,
            "additional_kwargs": {
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}},
                    {"id": "c2", "type": "function", "function": {"name": "bad", "arguments": "{oops"}},
                ]
            },
        },
    }
    data = from_langchain_dict(old)
    assert data["contents"] == [
        {"type": "function_call", "call_id": "c1", "name": "add", "arguments": {"a": 1}},
        {"type": "function_call", "call_id": "c2", "name": "bad", "arguments": "{oops"},
    ]
    (shown,) = messages_from_dict(to_langchain_dicts(data))
    assert isinstance(shown, AIMessage)
    assert shown.tool_calls == [{"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]
    assert [(c["name"], c["args"]) for c in shown.invalid_tool_calls] == [("bad", "{oops")]


# The legacy generation spells a role {"type": "role", "value": ...}, 1.x a str. (Not ids
# "legacy"/"current": those are the generation markers' keywords.)
@pytest.mark.parametrize("role_object", [True, False], ids=["role_object", "role_str"])
def test_framework_dicts_of_either_generation_show_as_langchain_messages(role_object: bool) -> None:
    def role(value: str) -> Any:
        return {"type": "role", "value": value} if role_object else value

    messages = [
        {"role": role("user"), "contents": [{"type": "text", "text": "add 2 and 3, and look it up"}]},
        {
            "role": role("assistant"),
            "message_id": "m2",
            "contents": [
                {"type": "text_reasoning", "text": "thinking"},
                {"type": "function_call", "call_id": "a", "name": "add", "arguments": '{"a": 2, "b": 3}'},
                {"type": "function_call", "call_id": "s", "name": "web_search", "arguments": {}, "hosted": True},
                {"type": "function_call", "call_id": "b", "name": "lookup", "arguments": None},
            ],
        },
        {
            "role": role("tool"),
            "message_id": "m3",
            "contents": [
                {"type": "function_result", "call_id": "a", "result": 5},
                {"type": "function_result", "call_id": "b", "result": {"x": [1]}, "exception": "KeyError"},
            ],
        },
        # Nothing LangChain can show: an approval response, reasoning only.
        {"role": role("user"), "contents": [{"type": "function_approval_response", "approved": True}]},
        {"role": role("assistant"), "contents": [{"type": "text_reasoning", "text": "hmm"}]},
        {"role": role("assistant"), "contents": [{"type": "text", "text": "It"}, {"type": "text", "text": "is 5."}]},
    ]
    shown = messages_from_dict([d for m in messages for d in to_langchain_dicts(m)])
    assert shown == [
        HumanMessage("add 2 and 3, and look it up"),
        AIMessage(
            "",
            id="m2",
            tool_calls=[
                {"name": "add", "args": {"a": 2, "b": 3}, "id": "a"},
                {"name": "lookup", "args": {}, "id": "b"},
            ],
        ),
        ToolMessage("5", tool_call_id="a", id="m3"),
        ToolMessage('{"x": [1]}', tool_call_id="b", status="error"),
        AIMessage("It is 5."),
    ]


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"type": "remove", "data": {"id": "x"}}, ValueError, r"type 'remove' has no Agent Framework equivalent"),
        ({"type": "human", "data": "hi"}, TypeError, r"'data' of a LangChain message must be an object"),
        ({"type": "tool", "data": {"content": "x"}}, ValueError, r"'data.tool_call_id'"),
        ({"type": "chat", "data": {"content": "x"}}, ValueError, r"'data.role'"),
        ({"type": "human", "data": {"content": 5}}, TypeError, r"'data.content' must be a str or a list"),
        (
            {"type": "ai", "data": {"content": "", "tool_calls": [{"name": "f", "args": [1], "id": "c"}]}},
            TypeError,
            r"'data.tool_calls\[0\].args' must be an object",
        ),
        (
            {"type": "ai", "data": {"content": "", "tool_calls": [{"args": {}, "id": "c"}]}},
            TypeError,
            r"'data.tool_calls\[0\].name' must be a str",
        ),
        ({"type": "human", "data": {"content": "x", "id": 7}}, TypeError, r"'data.id' must be a str"),
    ],
)
def test_a_langchain_dict_that_cannot_be_converted_names_the_field(
    data: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        from_langchain_dict(data)


def test_a_framework_dict_without_a_role_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'role' must be a non-empty str"):
        to_langchain_dicts({"contents": []})


def test_the_conversion_imports_without_langchain_core() -> None:
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None\n"
        "from agent_framework_redis_store.langchain import from_langchain_dict\n"
        "print(from_langchain_dict({'type': 'human', 'data': {'content': 'hi'}})['role'])\n"
        "try:\n"
        "    from agent_framework_redis_store.langchain import RedisChatMessageHistory\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "user",
        "RedisChatMessageHistory needs the [langchain] extra: pip install 'agent-framework-redis-store[langchain]' "
        "(missing: langchain_core)",
    ]


def test_public_names_are_shown_as_the_langchain_module_s() -> None:
    for obj in (RedisChatMessageHistory, RedisChatMessageHistoryFactory, from_langchain_dict, to_langchain_dicts):
        assert obj.__module__ == "agent_framework_redis_store.langchain"
