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
    FunctionMessage,
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
    from_langchain_dicts,
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
    (image,) = [c for c in picture.contents if c.type == "uri"]
    assert (image.uri, image.media_type) == ("https://example.com/cat.png", "image/png")
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
    # ... and it is the message langchain-core itself reads from the record, raw calls included.
    assert messages_from_dict(to_langchain_dicts(framework_message(data).to_dict())) == messages_from_dict([old])


def conversation_turns() -> list[BaseMessage]:
    """What one conversation may hold beyond ROUND_TRIPS: messages only the conversation converts."""
    turns: list[BaseMessage] = [
        SystemMessage("You may call functions."),
        # OpenAI's function calling before tools: no call ids; the function message answers by name.
        AIMessage("", additional_kwargs={"function_call": {"name": "calc", "arguments": '{"x": 1}'}}),
        FunctionMessage(content="42", name="calc"),
        FunctionMessage(content="nobody asked", name="other"),
        ChatMessage(content="hi", role="human"),
        ChatMessage(content="hi", role="user"),
        ChatMessage(content="odd", role="tool"),
        AIMessage("", invalid_tool_calls=[{"name": "b", "args": "{x", "id": "c3", "error": "Expecting value"}]),
        # The provider's raw copy of the same calls beside tool_calls (langchain-openai writes both).
        AIMessage(
            "",
            tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1"}],
            additional_kwargs={
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
            },
        ),
        ToolMessage(
            [{"type": "text", "text": "see"}, {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}],
            tool_call_id="c1",
        ),
        AIMessage(
            [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "ok"},
                {"type": "tool_use", "id": "t1", "name": "g", "input": {}},
            ],
            tool_calls=[{"name": "g", "args": {}, "id": "t1"}],
        ),
        ToolMessage("done", tool_call_id="t1", status="success", artifact=[1]),
        HumanMessage("an example", example=True),
    ]
    return turns


def test_a_langchain_conversation_survives_the_framework_messages() -> None:
    data = from_langchain_dicts(message_to_dict(m) for m in conversation_turns())
    stored = [framework_message(d).to_dict() for d in data]
    assert messages_from_dict([shown for m in stored for shown in to_langchain_dicts(m)]) == conversation_turns()
    # What the framework sees: the function call and its answer paired by a call id of their own.
    assert [(c["type"], c["call_id"]) for d in data[1:4] for c in d["contents"]] == [
        ("function_call", "langchain-function-call-1"),
        ("function_result", "langchain-function-call-1"),
        ("function_result", "langchain-function-result-3"),
    ]
    assert data[1]["contents"][0]["arguments"] == {"x": 1}
    assert [d["role"] for d in data[4:7]] == ["user", "user", "tool"]
    assert data[7]["contents"] == [{"type": "function_call", "call_id": "c3", "name": "b", "arguments": "{x"}]
    assert data[9]["contents"] == [{"type": "function_result", "call_id": "c1", "result": "see"}]
    # The tool_use block repeats the call: shown once, as the call.
    assert [c["type"] for c in data[10]["contents"]] == ["text_reasoning", "text", "function_call"]


def test_older_langchain_records_and_content_blocks_convert() -> None:
    def item(kind: str, **data: Any) -> dict[str, Any]:
        return {"type": kind, "data": {"type": kind, "additional_kwargs": {}, "response_metadata": {}, **data}}

    raw_calls = [{"id": "c9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    records = [
        # OpenAI tool calls only in additional_kwargs (LangChain before tool_calls).
        item("ai", content="", additional_kwargs={"tool_calls": raw_calls}, example=False),
        item("tool", content=[{"type": "text", "text": "do"}, "ne"], tool_call_id="c9"),
        # OpenAI's function calling, before tools: no call ids at all.
        item("ai", content="", additional_kwargs={"function_call": {"name": "calc", "arguments": "{}"}}),
        item("function", content="42", name="calc"),
        item(
            "AIMessageChunk",
            content=[
                {"type": "thinking", "thinking": "hmm"},
                {"type": "text", "text": "ok"},
                {"type": "tool_use", "id": "t1", "name": "g", "input": {}},
            ],
            tool_calls=[{"name": "g", "args": {}, "id": "t1", "type": "tool_call"}],
        ),
        item("human", content=[{"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}]),
        item("human", content=[{"type": "custom", "x": 1}]),
        item("FunctionMessageChunk", content="7", name="calc"),
    ]
    converted = from_langchain_dicts(records)

    def shape(message: dict[str, Any]) -> tuple[Any, ...]:
        contents = []
        for c in message["contents"]:
            if c["type"] == "function_call":
                contents.append(("call", c["call_id"], c["name"], c["arguments"]))
            elif c["type"] == "function_result":
                contents.append(("result", c["call_id"], c["result"]))
            else:
                contents.append((c["type"], c.get("text") or c.get("uri"), c.get("media_type")))
        return (message["role"], *contents)

    assert [shape(m) for m in converted] == [
        ("assistant", ("call", "c9", "f", {"a": 1})),
        ("tool", ("result", "c9", "done")),
        ("assistant", ("call", "langchain-function-call-2", "calc", {})),
        ("tool", ("result", "langchain-function-call-2", "42")),
        ("assistant", ("text_reasoning", "hmm", None), ("text", "ok", None), ("call", "t1", "g", {})),
        ("user", ("data", "data:image/png;base64,iVBORw0KGgo=", "image/png")),
        ("user",),
        ("tool", ("result", "langchain-function-result-7", "7")),
    ]
    # The defaults add nothing; the raw calls are kept as written, beside the calls made of them,
    # and so is LangChain 0.x's example flag (a 1.x message reads it as an extra attribute).
    assert converted[0]["additional_properties"] == {
        LANGCHAIN_PROPERTY: {"additional_kwargs": {"tool_calls": raw_calls}, "example": False}
    }
    # A block with no framework content is kept, not dropped.
    assert converted[6]["additional_properties"][LANGCHAIN_PROPERTY]["content"] == [{"type": "custom", "x": 1}]
    for message in converted:
        framework_message(message)  # the installed generation reads each one


@pytest.mark.parametrize(
    "block",
    [
        {"type": "video", "base64": "AAAA", "mime_type": "video/mp4"},  # a type the legacy generation refuses
        {"type": "image", "base64": "not base64!", "mime_type": "image/png"},
        {"type": "image_url", "image_url": {"url": "data:text/plain,hello"}},  # not base64
        {"type": "file", "file_id": "file-1"},
    ],
)
def test_a_block_no_generation_can_read_as_media_is_kept_only(block: dict[str, Any]) -> None:
    data = from_langchain_dict({"type": "human", "data": {"content": ["look:", block]}})
    # Threads are shared by both generations: a content either one refuses would break the thread for it.
    assert data["contents"] == [{"type": "text", "text": "look:"}]
    assert data["additional_properties"] == {LANGCHAIN_PROPERTY: {"content": ["look:", block]}}
    assert to_langchain_dicts(framework_message(data).to_dict())[0]["data"]["content"] == ["look:", block]


def test_a_conversation_error_names_the_message() -> None:
    good = {"type": "human", "data": {"content": "hi"}}
    with pytest.raises(ValueError, match=r"^messages\[1\]: 'data.tool_call_id'"):
        from_langchain_dicts([good, {"type": "tool", "data": {"content": "x"}}])
    with pytest.raises(TypeError, match=r"^messages\[0\]: 'data' of a LangChain message must be an object"):
        from_langchain_dicts([{"type": "human", "data": None}])
    with pytest.raises(TypeError, match=r"messages must be an iterable of LangChain message dicts, got dict"):
        from_langchain_dicts(good)  # type: ignore[arg-type]


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
        # On its own, a function message names no call: from_langchain_dicts pairs it in its conversation.
        (
            {"type": "function", "data": {"content": "42", "name": "calc"}},
            ValueError,
            r"type 'function' has no Agent Framework equivalent on its own: it names no call id",
        ),
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
    for obj in (
        RedisChatMessageHistory,
        RedisChatMessageHistoryFactory,
        from_langchain_dict,
        from_langchain_dicts,
        to_langchain_dicts,
    ):
        assert obj.__module__ == "agent_framework_redis_store.langchain"
