"""LangChain messages <-> Agent Framework message dicts, as plain dicts.

The one conversion for everything that moves messages between the two: the LangChain chat
message history (``langchain.py``) and the migration of LangChain histories
(``_ops/migrate_sources.py``). It works on LangChain's ``message_to_dict`` shape,
``{"type": "human" | "ai" | "system" | "tool" | "function" | "chat", "data": {...}}`` (and
the chunk types), and on the framework's ``to_dict()`` shape of either generation, so it
needs neither langchain-core nor the framework to import.

- ``HumanMessage`` <-> a ``user`` message; ``SystemMessage`` <-> ``system``;
  ``ChatMessage(role=...)`` <-> a message of that role (``human`` / ``ai`` read as ``user`` /
  ``assistant``). Its ``content``: a str, or blocks that become ``text``, ``text_reasoning``
  (reasoning / thinking) and media (``uri``, or ``data`` for base64) contents.
- ``AIMessage`` <-> an ``assistant`` message: its contents, then one ``function_call``
  content (``call_id``, ``name``, ``arguments``) per entry of ``tool_calls`` and of
  ``invalid_tool_calls`` (``arguments`` as the raw string), or, in a record older than
  ``tool_calls``, per OpenAI tool call in ``additional_kwargs``.
- ``ToolMessage(tool_call_id=...)`` <-> a ``tool`` message with one ``function_result``
  (``call_id``, ``result``: the text; ``exception`` when ``status="error"``).
- OpenAI's function calling before tools (``additional_kwargs.function_call`` and a
  ``FunctionMessage``) names no call ids: only a whole conversation pairs them
  (``LangChainConversation``, ``from_langchain_dicts``), with ids made from positions.
- ``id`` <-> ``message_id``, ``name`` <-> ``author_name``.

What the framework has no field for (``additional_kwargs``, ``response_metadata``,
``usage_metadata``, a tool's ``artifact``, content given as a list of blocks, any other
field that is not LangChain's default) is kept in the framework message's
``additional_properties["langchain"]``, which the framework's chat clients never send to a
model, and restored on the way back: nothing LangChain writes is lost, and a message reads
back as it was written. The way back is a view: framework contents LangChain has no message
for (reasoning, usage, approvals, files, provider-hosted tool calls) are left out of it, and
stay stored.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

__all__ = [
    "LANGCHAIN_PROPERTY",
    "LangChainConversation",
    "from_langchain_dict",
    "from_langchain_dicts",
    "to_langchain_dicts",
]

LANGCHAIN_PROPERTY = "langchain"
"""The key of a framework message's ``additional_properties`` that holds LangChain-only fields."""

# LangChain message type -> framework role ("chat" carries its own role).
_ROLE_OF_TYPE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_TYPE_OF_ROLE = {role: kind for kind, role in _ROLE_OF_TYPE.items()}
# A ChatMessage's role as the framework (and a model) knows it.
_ROLE_OF_CHAT_ROLE = {"human": "user", "ai": "assistant"}
# What message_to_dict writes for a streamed chunk (AIMessageChunk, ...): stored as the full message.
_CHUNK_TYPES = {
    "HumanMessageChunk": "human",
    "AIMessageChunk": "ai",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
    "FunctionMessageChunk": "function",
    "ChatMessageChunk": "chat",
}
# A chunk's streaming state: it restates the chunk's tool_calls, which are converted.
_CHUNK_ONLY = frozenset({"tool_call_chunks", "chunk_position"})
# Fields every type converts; each type adds its own (_convert).
_CONVERTED = frozenset({"content", "type", "id", "name"})
# The call id made for an AI message's additional_kwargs.function_call, kept beside its fields
# (not a LangChain field): the way back shows that call through additional_kwargs, not as a tool call.
_FUNCTION_CALL_ID = "function_call_id"
# Kept entries the way back restores each in its own way (type and role: a chat or function
# message the role alone would show as another type); any other goes back into "data" as it is.
_RESTORED_APART = frozenset(
    {
        "content",
        "type",
        "role",
        "invalid_tool_calls",
        _FUNCTION_CALL_ID,
        "additional_kwargs",
        "response_metadata",
        "usage_metadata",
        "artifact",
    }
)
# Content blocks that repeat a tool call of the message (Anthropic, LangChain's standard blocks).
_CALL_BLOCKS = frozenset({"tool_use", "tool_call", "function_call", "server_tool_use"})
_MEDIA_DEFAULTS = {"image": "image/*", "image_url": "image/*", "audio": "audio/*", "video": "video/*"}
# A data URI every framework generation reads: the legacy one accepts only base64 of these
# media types (agent-framework-core 1.0.0b251223, _types.URI_PATTERN and KNOWN_MEDIA_TYPES).
# Threads are shared across generations, so a block that is not one stays a kept block only.
_DATA_URI = re.compile(r"^data:(?P<media_type>[^;,]+);base64,[A-Za-z0-9+/=]+$")
_DATA_MEDIA_TYPES = frozenset(
    {
        "application/json",
        "application/octet-stream",
        "application/pdf",
        "application/xml",
        "audio/mpeg",
        "audio/mp3",
        "audio/ogg",
        "audio/wav",
        "image/apng",
        "image/avif",
        "image/bmp",
        "image/gif",
        "image/jpeg",
        "image/png",
        "image/svg+xml",
        "image/tiff",
        "image/webp",
        "text/css",
        "text/csv",
        "text/html",
        "text/javascript",
        "text/plain",
        "text/xml",
    }
)


class LangChainConversation:
    """Converts the ``message_to_dict`` dicts of one conversation, oldest first, one at a time.

    What a single message cannot know is kept here. OpenAI's function calling before tools
    names no call ids: an AI message's ``additional_kwargs.function_call`` becomes a
    ``function_call`` with the id ``langchain-function-call-<n>`` (``n``: the message's
    position, oldest first, so ids stay the same however long the conversation grows), and
    the next ``function`` message of that name its ``function_result``
    (``langchain-function-result-<n>`` if no call waits for it).
    """

    def __init__(self) -> None:
        self._position = -1
        self._waiting: dict[str, list[str]] = {}

    def convert(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The framework message dict of the conversation's next message (see ``from_langchain_dict``)."""
        self._position += 1
        return _convert(data, self)

    def _call(self, name: str) -> str:
        call_id = f"langchain-function-call-{self._position}"
        self._waiting.setdefault(name, []).append(call_id)
        return call_id

    def _answer(self, name: str | None) -> str:
        waiting = self._waiting.get(name) if name is not None else None
        return waiting.pop(0) if waiting else f"langchain-function-result-{self._position}"


def from_langchain_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """One framework message dict from one LangChain ``message_to_dict`` dict.

    The result reads in either framework generation (``role`` as a string, no ``type``).
    Raises ``TypeError`` / ``ValueError`` naming the field that cannot be converted, such as
    a message type with no framework equivalent (``remove``). A ``function`` message
    (OpenAI's function calling before tools) names no call id: ``from_langchain_dicts``
    converts it with its conversation; an AI message's ``additional_kwargs.function_call``
    is kept there, not made a call, here.
    """
    return _convert(data, None)


def from_langchain_dicts(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The framework message dicts of a LangChain conversation's ``message_to_dict`` dicts, oldest first.

    As ``from_langchain_dict``, and it pairs OpenAI's older ``function_call`` and
    ``function`` messages with call ids of their own (``LangChainConversation``). An error
    names the message: ``messages[i]: ...``.
    """
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable):
        raise TypeError(f"messages must be an iterable of LangChain message dicts, got {type(messages).__name__}")
    conversation = LangChainConversation()
    converted: list[dict[str, Any]] = []
    for i, data in enumerate(messages):
        try:
            converted.append(conversation.convert(data))
        except TypeError as err:
            raise TypeError(f"messages[{i}]: {err}") from err
        except ValueError as err:
            raise ValueError(f"messages[{i}]: {err}") from err
    return converted


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
    kind = kept["type"] if kept.get("type") in ("chat", "function") else _TYPE_OF_ROLE.get(role, "chat")
    extras = {field: value for field, value in kept.items() if field not in _RESTORED_APART}

    texts = [c["text"] for c in contents if c.get("type") == "text" and isinstance(c.get("text"), str)]
    calls = [c for c in contents if c.get("type") == "function_call" and not c.get("hosted")]
    results = [c for c in contents if c.get("type") == "function_result"]
    shown: list[dict[str, Any]] = []
    if kind not in ("tool", "function") and (texts or calls or not contents or "content" in kept):
        # A call made for additional_kwargs.function_call is shown there (kept), not as a tool call.
        function_call_id = kept.get(_FUNCTION_CALL_ID)
        calls = [c for c in calls if function_call_id is None or c.get("call_id") != function_call_id]
        body: dict[str, Any] = {
            # The framework's own Message.text joins text contents with a space.
            "content": kept["content"] if "content" in kept else " ".join(texts),
            "additional_kwargs": _kept_dict(kept, "additional_kwargs"),
            "response_metadata": _kept_dict(kept, "response_metadata"),
            "type": kind,
            "name": name,
            "id": message_id,
        }
        if kind == "chat":
            body["role"] = kept.get("role", role)
        if kind == "ai":
            body.update(_tool_calls(calls, kept.get("invalid_tool_calls")), usage_metadata=kept.get("usage_metadata"))
        shown.append({"type": kind, "data": {**body, **extras}})
    for result in results:
        only = len(results) == 1
        body = {
            "content": kept["content"] if only and "content" in kept else _result_text(result),
            "additional_kwargs": _kept_dict(kept, "additional_kwargs") if only else {},
            "response_metadata": _kept_dict(kept, "response_metadata") if only else {},
            "type": kind,
            "name": name,
            "id": message_id if not shown else None,
        }
        if kind != "function":
            body.update(
                tool_call_id=str(result.get("call_id") or ""),
                artifact=kept.get("artifact") if only else None,
                status="error" if result.get("exception") else "success",
            )
        shown.append({"type": body["type"], "data": {**body, **extras} if only else body})
    return shown


# -- LangChain -> framework -----------------------------------------------------------------


def _convert(data: Mapping[str, Any], conversation: LangChainConversation | None) -> dict[str, Any]:
    """One framework message dict; ``conversation`` is None for a message on its own."""
    if not isinstance(data, Mapping):
        raise TypeError(f"a LangChain message dict must be an object, got {type(data).__name__}")
    kind = data.get("type")
    body = data.get("data")
    if not isinstance(body, Mapping):
        raise TypeError(f"'data' of a LangChain message must be an object, got {type(body).__name__}")
    kind = _CHUNK_TYPES.get(kind, kind) if isinstance(kind, str) else kind
    kept: dict[str, Any] = {}
    converted = set(_CONVERTED)
    if kind == "chat":
        chat_role = body.get("role")
        if not isinstance(chat_role, str) or not chat_role:
            raise ValueError(f"'data.role' of a LangChain chat message must be a non-empty str, got {chat_role!r}")
        role = _ROLE_OF_CHAT_ROLE.get(chat_role, chat_role)
        if role in _TYPE_OF_ROLE:
            # The role alone would read back as another type (a HumanMessage for "user").
            kept["type"] = "chat"
            if role != chat_role:
                kept["role"] = chat_role
        converted.add("role")
    elif kind == "function":
        if conversation is None:
            raise ValueError(
                "LangChain message type 'function' has no Agent Framework equivalent on its own: it names no "
                "call id (from_langchain_dicts pairs it with its call in the conversation)"
            )
        role = "tool"
        kept["type"] = "function"
    elif isinstance(kind, str) and kind in _ROLE_OF_TYPE:
        role = _ROLE_OF_TYPE[kind]
    else:
        supported = [*_ROLE_OF_TYPE, "function", "chat"] if conversation is not None else [*_ROLE_OF_TYPE, "chat"]
        raise ValueError(
            f"LangChain message type {kind!r} has no Agent Framework equivalent (supported: {', '.join(supported)})"
        )

    content = body.get("content", "")
    if not isinstance(content, (str, list)):
        raise TypeError(f"'data.content' must be a str or a list of content blocks, got {type(content).__name__}")
    if isinstance(content, list):
        # The blocks as written (provider-specific parts, annotations, cache control): the
        # contents below say what the framework can of them, this restores them exactly.
        kept["content"] = content
    name = body.get("name")
    name = None if name is None else _str_field(name, "data.name")
    if kind in ("tool", "function"):
        converted.add("tool_call_id")
        if body.get("status") in (None, "success", "error"):
            converted.add("status")  # as the result's exception; another value is kept
        contents = [_function_result(kind, body, _texts_of(content), name, conversation)]
    elif kind == "ai":
        converted.update({"tool_calls", "invalid_tool_calls"})
        calls = _function_calls(body, conversation, kept)
        contents = [*_contents_of(content, {c["call_id"] for c in calls if c["call_id"]}), *calls]
    else:
        contents = _contents_of(content, set())

    message: dict[str, Any] = {"role": role, "contents": contents}
    message_id = body.get("id")
    if name is not None:
        message["author_name"] = name
    if message_id is not None:
        message["message_id"] = _str_field(message_id, "data.id")
    for field, value in body.items():
        # Only LangChain's defaults (None, {}, [], "") go: keeping them would add nothing.
        if field not in converted and field not in _CHUNK_ONLY and value not in (None, "", {}, []):
            kept[field] = value
    if kind == "ai" and body.get("invalid_tool_calls"):
        # Their calls are contents; this keeps what those cannot hold (the parser's error).
        kept["invalid_tool_calls"] = body["invalid_tool_calls"]
    if kept:
        message["additional_properties"] = {LANGCHAIN_PROPERTY: kept}
    return message


def _texts_of(content: str | list[Any]) -> list[str]:
    """The text parts of a LangChain ``content``: a str, or a list of str and content blocks."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
    return texts


def _contents_of(content: str | list[Any], call_ids: set[str]) -> list[dict[str, Any]]:
    """The framework contents of a LangChain ``content``, in its order.

    ``call_ids`` are the message's tool calls: a block repeating one of them (Anthropic's
    ``tool_use``) is represented by its ``function_call`` content. A block with no framework
    content is left out (it is kept with the rest of the list).
    """
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    contents: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            converted = {"type": "text", "text": block} if block else None
        elif isinstance(block, Mapping) and not (block.get("type") in _CALL_BLOCKS and block.get("id") in call_ids):
            converted = _block(block)
        else:
            converted = None
        if converted is not None:
            contents.append(converted)
    return contents


def _block(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """One content block as a framework content, or None if the framework has none for it."""
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return {"type": "text", "text": block["text"]} if block["text"] else None
    if kind in ("reasoning", "thinking") and isinstance(block.get(kind), str):
        return {"type": "text_reasoning", "text": block[kind]}
    if kind == "image_url":
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return _media(url, None, kind) if isinstance(url, str) else None
    if kind in ("image", "audio", "video", "file"):
        mime = block.get("mime_type") if isinstance(block.get("mime_type"), str) else None
        data = block.get("base64") or (block.get("data") if block.get("source_type") == "base64" else None)
        url = block.get("url")
        if isinstance(data, str):
            return _media(f"data:{mime or 'application/octet-stream'};base64,{data}", mime, kind)
        if isinstance(url, str):
            return _media(url, mime, kind)
    return None


def _media(url: str, mime: str | None, kind: str) -> dict[str, Any] | None:
    if url.startswith("data:"):
        match = _DATA_URI.match(url)
        if match is None or match["media_type"] not in _DATA_MEDIA_TYPES:
            return None
        return {"type": "data", "uri": url, "media_type": match["media_type"]}
    guessed = _builtin_mimetypes().guess_type(url.split("?", 1)[0])[0]
    # The legacy framework requires a media type on a URI; a client reads its top-level type.
    media_type = mime or guessed or _MEDIA_DEFAULTS.get(kind, "application/octet-stream")
    return {"type": "uri", "uri": url, "media_type": media_type}


@cache
def _builtin_mimetypes() -> mimetypes.MimeTypes:
    # Python's own table, not the machine's (/etc/mime.types): the same message converts the
    # same everywhere, so a migration run again elsewhere finds its copy equal.
    return mimetypes.MimeTypes()


def _function_calls(
    body: Mapping[str, Any], conversation: LangChainConversation | None, kept: dict[str, Any]
) -> list[dict[str, Any]]:
    tool_calls = _list_field(body.get("tool_calls"), "data.tool_calls")
    invalid_calls = _list_field(body.get("invalid_tool_calls"), "data.invalid_tool_calls")
    calls: list[dict[str, Any]] = []
    for i, call in enumerate(tool_calls):
        where = f"data.tool_calls[{i}]"
        args = _mapping_field(call, where).get("args", {})
        if not isinstance(args, Mapping):
            raise TypeError(f"'{where}.args' must be an object, got {type(args).__name__}")
        calls.append(_function_call(call.get("id"), call.get("name"), dict(args), where))
    for i, call in enumerate(invalid_calls):
        where = f"data.invalid_tool_calls[{i}]"
        # The framework keeps arguments it could not parse as the raw string, as LangChain does here.
        args = _mapping_field(call, where).get("args")
        arguments = "" if args is None else _str_field(args, f"{where}.args")
        calls.append(_function_call(call.get("id"), call.get("name"), arguments, where))
    additional_kwargs = body.get("additional_kwargs")
    if not isinstance(additional_kwargs, Mapping):
        return calls
    if not calls:
        # A record older than AIMessage.tool_calls: only OpenAI's raw form (kept as it is, in additional_kwargs).
        calls = _openai_tool_calls(additional_kwargs.get("tool_calls"))
    function_call = additional_kwargs.get("function_call")
    if conversation is not None and function_call is not None:
        where = "data.additional_kwargs.function_call"
        name = _str_field(_mapping_field(function_call, where).get("name"), f"{where}.name")
        call_id = conversation._call(name)  # pyright: ignore[reportPrivateUsage]
        calls.append(_function_call(call_id, name, _openai_arguments(function_call, where), where))
        kept[_FUNCTION_CALL_ID] = call_id
    return calls


def _function_call(call_id: Any, name: Any, arguments: dict[str, Any] | str, where: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        # LangChain allows a call without an id; the framework's call_id is a str.
        "call_id": "" if call_id is None else _str_field(call_id, f"{where}.id"),
        "name": _str_field(name, f"{where}.name"),
        "arguments": arguments,
    }


def _openai_tool_calls(raw: Any) -> list[dict[str, Any]]:
    """Tool calls as LangChain stored them before ``AIMessage.tool_calls``: OpenAI's format in ``additional_kwargs``."""
    if not isinstance(raw, list):
        return []
    calls: list[dict[str, Any]] = []
    for i, call in enumerate(raw):
        where = f"data.additional_kwargs.tool_calls[{i}]"
        function = _mapping_field(_mapping_field(call, where).get("function"), f"{where}.function")
        arguments = _openai_arguments(function, f"{where}.function")
        calls.append(_function_call(call.get("id"), function.get("name"), arguments, where))
    return calls


def _openai_arguments(function: Mapping[str, Any], where: str) -> dict[str, Any] | str:
    """OpenAI's JSON text of a call's arguments: the object, or the raw string if it is not one."""
    raw = function.get("arguments")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        parsed = None
    # Arguments that are not a JSON object stay the raw string (read back as an invalid tool call).
    return dict(parsed) if isinstance(parsed, dict) else _str_field(raw, f"{where}.arguments")


def _function_result(
    kind: str, body: Mapping[str, Any], texts: list[str], name: str | None, conversation: LangChainConversation | None
) -> dict[str, Any]:
    if kind == "function":
        assert conversation is not None
        call_id = conversation._answer(name)  # pyright: ignore[reportPrivateUsage]
    else:
        call_id = body.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(
                f"'data.tool_call_id' of a LangChain tool message must be a non-empty str, got {call_id!r}"
            )
    # The result is the text; blocks beyond it (images, files) are kept with the content.
    result: dict[str, Any] = {"type": "function_result", "call_id": call_id, "result": "".join(texts)}
    if body.get("status") == "error":
        # The framework marks a failed call by its exception; its text is the tool's error message.
        result["exception"] = result["result"] or "error"
    return result


def _str_field(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"'{where}' must be a str, got {type(value).__name__}")
    return value


def _mapping_field(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"'{where}' must be an object, got {type(value).__name__}")
    return value


def _list_field(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"'{where}' must be a list, got {type(value).__name__}")
    return value


# -- framework -> LangChain -----------------------------------------------------------------


def _kept_dict(kept: Mapping[str, Any], field: str) -> Any:
    value = kept.get(field)
    # A copy, so the LangChain message shares nothing with the stored one; a non-object as it was written.
    return dict(value) if isinstance(value, Mapping) else {} if value is None else value


def _tool_calls(calls: list[Mapping[str, Any]], kept_invalid: Any) -> dict[str, Any]:
    # The invalid calls as LangChain wrote them (with the parser's error), where kept.
    originals = [c for c in kept_invalid if isinstance(c, Mapping)] if isinstance(kept_invalid, list) else []
    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for call in calls:
        call_id = call.get("call_id") or None
        name = call.get("name")
        arguments = call.get("arguments")
        original = next((c for c in originals if _is_call(c, call_id, name, arguments)), None)
        if original is not None:
            originals.remove(original)
            invalid.append(dict(original))
            continue
        args = _parse_arguments(arguments)
        if args is None:
            raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
            invalid.append({"name": name, "args": raw, "id": call_id, "error": None, "type": "invalid_tool_call"})
        else:
            valid.append({"name": name, "args": args, "id": call_id, "type": "tool_call"})
    return {"tool_calls": valid, "invalid_tool_calls": invalid}


def _is_call(invalid_call: Mapping[str, Any], call_id: Any, name: Any, arguments: Any) -> bool:
    args = invalid_call.get("args")
    written = (invalid_call.get("id"), invalid_call.get("name"), "" if args is None else args)
    return written == (call_id, name, arguments)


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
