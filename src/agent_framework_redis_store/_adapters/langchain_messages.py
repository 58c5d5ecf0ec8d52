"""LangChain messages <-> Agent Framework message dicts, as plain dicts.

One conversion for everything that moves messages between the two: the LangChain chat
message history (``langchain.py``) and importers of LangChain histories. It works on
LangChain's ``message_to_dict`` shape, ``{"type": "human" | "ai" | "system" | "tool" |
"chat", "data": {...}}``, and on the framework's ``to_dict()`` shape of either generation,
so it needs neither langchain-core nor the framework to import.

- ``HumanMessage`` <-> a ``user`` message with text contents; ``SystemMessage`` <-> ``system``;
  ``ChatMessage(role=...)`` <-> a message of that role.
- ``AIMessage`` <-> an ``assistant`` message: its text, then one ``function_call`` content
  (``call_id``, ``name``, ``arguments``) per entry of ``tool_calls`` (``invalid_tool_calls``:
  ``arguments`` as the raw string).
- ``ToolMessage(tool_call_id=...)`` <-> a ``tool`` message with one ``function_result``
  (``call_id``, ``result``; ``exception`` when ``status="error"``).
- ``id`` <-> ``message_id``, ``name`` <-> ``author_name``.

What the framework has no field for (``additional_kwargs``, ``response_metadata``,
``usage_metadata``, a tool's ``artifact``, content given as a list of blocks) is kept in the
framework message's ``additional_properties["langchain"]``, which the framework's chat
clients never send to a model, and restored on the way back: nothing LangChain writes is
lost. The way back is a view: framework contents LangChain has no message for (reasoning,
usage, approvals, files, provider-hosted tool calls) are left out of it, and stay stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["LANGCHAIN_PROPERTY", "from_langchain_dict", "to_langchain_dicts"]

LANGCHAIN_PROPERTY = "langchain"
"""The key of a framework message's ``additional_properties`` that holds LangChain-only fields."""

# LangChain message type -> framework role ("chat" carries its own role).
_ROLE_OF_TYPE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_TYPE_OF_ROLE = {role: kind for kind, role in _ROLE_OF_TYPE.items()}
# What message_to_dict writes for a streamed chunk (AIMessageChunk, ...): stored as the full message.
_CHUNK_TYPES = {
    "HumanMessageChunk": "human",
    "AIMessageChunk": "ai",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
    "ChatMessageChunk": "chat",
}
# LangChain fields the framework has no place for, kept under additional_properties["langchain"].
_KEPT_FIELDS = ("additional_kwargs", "response_metadata", "usage_metadata", "artifact")


def from_langchain_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """One framework message dict from one LangChain ``message_to_dict`` dict.

    The result reads in either framework generation (``role`` as a string, no ``type``).
    Raises ``TypeError`` / ``ValueError`` naming the field that cannot be converted, such as
    a message type with no framework equivalent (``function``, ``remove``).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"a LangChain message dict must be an object, got {type(data).__name__}")
    kind = data.get("type")
    body = data.get("data")
    if not isinstance(body, Mapping):
        raise TypeError(f"'data' of a LangChain message must be an object, got {type(body).__name__}")
    kind = _CHUNK_TYPES.get(kind, kind) if isinstance(kind, str) else kind
    if kind == "chat":
        role = body.get("role")
        if not isinstance(role, str) or not role:
            raise ValueError(f"'data.role' of a LangChain chat message must be a non-empty str, got {role!r}")
    elif isinstance(kind, str) and kind in _ROLE_OF_TYPE:
        role = _ROLE_OF_TYPE[kind]
    else:
        raise ValueError(
            f"LangChain message type {kind!r} has no Agent Framework equivalent "
            f"(supported: {', '.join([*_ROLE_OF_TYPE, 'chat'])})"
        )

    content = body.get("content", "")
    texts = _texts_of(content)
    if kind == "tool":
        contents = [_function_result(body, texts)]
    else:
        contents = [{"type": "text", "text": text} for text in texts if text]
        if kind == "ai":
            contents += _function_calls(body)

    message: dict[str, Any] = {"role": role, "contents": contents}
    name, message_id = body.get("name"), body.get("id")
    if name is not None:
        message["author_name"] = _str_field(name, "data.name")
    if message_id is not None:
        message["message_id"] = _str_field(message_id, "data.id")
    # Only what differs from LangChain's defaults (None, {}) is kept.
    kept = {field: body[field] for field in _KEPT_FIELDS if body.get(field) not in (None, {})}
    if isinstance(content, list):
        # Blocks (images, provider-specific parts, annotations) the framework's text cannot hold.
        kept["content"] = content
    if kept:
        message["additional_properties"] = {LANGCHAIN_PROPERTY: kept}
    return message


def to_langchain_dicts(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The LangChain ``message_to_dict`` dicts that show one framework message (either generation's ``to_dict()``).

    Usually one; a message with several function results gives one ``ToolMessage`` each,
    and a message with nothing LangChain can show (only reasoning, usage or approvals)
    gives none. ``messages_from_dict`` turns the result into LangChain messages.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"a framework message dict must be an object, got {type(data).__name__}")
    role = data.get("role")
    if isinstance(role, Mapping):  # the legacy generation's {"type": "role", "value": ...}
        role = role.get("value")
    if not isinstance(role, str) or not role:
        raise ValueError(f"'role' must be a non-empty str, got {data.get('role')!r}")
    contents = [c for c in data.get("contents") or [] if isinstance(c, Mapping)]
    properties = data.get("additional_properties")
    kept = properties.get(LANGCHAIN_PROPERTY) if isinstance(properties, Mapping) else None
    kept = kept if isinstance(kept, Mapping) else {}
    message_id, name = data.get("message_id"), data.get("author_name")

    texts = [c["text"] for c in contents if c.get("type") == "text" and isinstance(c.get("text"), str)]
    calls = [c for c in contents if c.get("type") == "function_call" and not c.get("hosted")]
    results = [c for c in contents if c.get("type") == "function_result"]
    shown: list[dict[str, Any]] = []
    if role != "tool" and (texts or calls or not contents or "content" in kept):
        kind = _TYPE_OF_ROLE.get(role, "chat")
        body: dict[str, Any] = {
            # The framework's own Message.text joins text contents with a space.
            "content": kept["content"] if "content" in kept else " ".join(texts),
            "additional_kwargs": dict(kept.get("additional_kwargs") or {}),
            "response_metadata": dict(kept.get("response_metadata") or {}),
            "type": kind,
            "name": name,
            "id": message_id,
        }
        if kind == "chat":
            body["role"] = role
        if kind == "ai":
            body.update(_tool_calls(calls), usage_metadata=kept.get("usage_metadata"))
        shown.append({"type": kind, "data": body})
    for result in results:
        only = len(results) == 1
        shown.append(
            {
                "type": "tool",
                "data": {
                    "content": kept["content"] if only and "content" in kept else _result_text(result),
                    "additional_kwargs": dict(kept.get("additional_kwargs") or {}) if only else {},
                    "response_metadata": dict(kept.get("response_metadata") or {}) if only else {},
                    "type": "tool",
                    "name": name,
                    "id": message_id if not shown else None,
                    "tool_call_id": str(result.get("call_id") or ""),
                    "artifact": kept.get("artifact") if only else None,
                    "status": "error" if result.get("exception") else "success",
                },
            }
        )
    return shown


# -- LangChain -> framework -----------------------------------------------------------------


def _texts_of(content: Any) -> list[str]:
    """The text parts of a LangChain ``content``: a str, or a list of str and content blocks."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise TypeError(f"'data.content' must be a str or a list of content blocks, got {type(content).__name__}")
    texts: list[str] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
    return texts


def _function_calls(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not body.get("tool_calls"):
        return _openai_tool_calls(body.get("additional_kwargs"))
    calls: list[dict[str, Any]] = []
    for i, call in enumerate(body["tool_calls"]):
        where = f"data.tool_calls[{i}]"
        if not isinstance(call, Mapping):
            raise TypeError(f"'{where}' must be an object, got {type(call).__name__}")
        args = call.get("args", {})
        if not isinstance(args, Mapping):
            raise TypeError(f"'{where}.args' must be an object, got {type(args).__name__}")
        calls.append(_function_call(call.get("id"), call.get("name"), dict(args), where))
    for i, call in enumerate(body.get("invalid_tool_calls") or []):
        where = f"data.invalid_tool_calls[{i}]"
        if not isinstance(call, Mapping):
            raise TypeError(f"'{where}' must be an object, got {type(call).__name__}")
        # The framework keeps arguments it could not parse as the raw string, as LangChain does here.
        args = call.get("args")
        arguments = "" if args is None else _str_field(args, f"{where}.args")
        calls.append(_function_call(call.get("id"), call.get("name"), arguments, where))
    return calls


def _function_call(call_id: Any, name: Any, arguments: dict[str, Any] | str, where: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        # LangChain allows a call without an id; the framework's call_id is a str.
        "call_id": "" if call_id is None else _str_field(call_id, f"{where}.id"),
        "name": _str_field(name, f"{where}.name"),
        "arguments": arguments,
    }


def _openai_tool_calls(additional_kwargs: Any) -> list[dict[str, Any]]:
    """Tool calls as LangChain stored them before ``AIMessage.tool_calls``: OpenAI's format in ``additional_kwargs``."""
    if not isinstance(additional_kwargs, Mapping) or not isinstance(additional_kwargs.get("tool_calls"), list):
        return []
    calls: list[dict[str, Any]] = []
    for i, call in enumerate(additional_kwargs["tool_calls"]):
        where = f"data.additional_kwargs.tool_calls[{i}]"
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            raise TypeError(f"'{where}.function' must be an object")
        raw = function.get("arguments")
        try:
            parsed = json.loads(raw) if isinstance(raw, str) and raw else {}
        except ValueError:
            parsed = None
        # Arguments that are not a JSON object stay the raw string (read back as an invalid tool call).
        arguments = dict(parsed) if isinstance(parsed, dict) else _str_field(raw, f"{where}.function.arguments")
        calls.append(_function_call(call.get("id"), function.get("name"), arguments, where))
    return calls


def _function_result(body: Mapping[str, Any], texts: list[str]) -> dict[str, Any]:
    call_id = body.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise ValueError(f"'data.tool_call_id' of a LangChain tool message must be a non-empty str, got {call_id!r}")
    result: dict[str, Any] = {"type": "function_result", "call_id": call_id, "result": "".join(texts)}
    if body.get("status") == "error":
        # The framework marks a failed call by its exception; its text is the tool's error message.
        result["exception"] = result["result"] or "error"
    return result


def _str_field(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"'{where}' must be a str, got {type(value).__name__}")
    return value


# -- framework -> LangChain -----------------------------------------------------------------


def _tool_calls(calls: list[Mapping[str, Any]]) -> dict[str, Any]:
    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for call in calls:
        call_id = call.get("call_id") or None
        name = call.get("name")
        arguments = call.get("arguments")
        args = _parse_arguments(arguments)
        if args is None:
            raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
            invalid.append({"name": name, "args": raw, "id": call_id, "error": None, "type": "invalid_tool_call"})
        else:
            valid.append({"name": name, "args": args, "id": call_id, "type": "tool_call"})
    return {"tool_calls": valid, "invalid_tool_calls": invalid}


def _parse_arguments(arguments: Any) -> dict[str, Any] | None:
    """Arguments as the JSON object LangChain needs, or None if they are not one."""
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _result_text(content: Mapping[str, Any]) -> str:
    result = content.get("result")
    if result is None:
        # 1.x keeps rich results as items; their text is what LangChain can show.
        items = content.get("items")
        texts = [i["text"] for i in items or [] if isinstance(i, Mapping) and isinstance(i.get("text"), str)]
        return "".join(texts)
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False)
