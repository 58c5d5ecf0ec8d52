"""The Redis chat stores a migration reads: where their threads are and what their messages mean.

Microsoft's ``agent-framework-redis`` (each a Redis list of ``json.dumps(message.to_dict())``,
oldest first; read back with the installed framework, so either generation's spelling):

* the legacy ``RedisChatMessageStore`` (1.0.0b251223) and the 1.x ``RedisHistoryProvider``
  with ``key_format="legacy"``: ``{key_prefix}:{thread or session id}``;
* the 1.x ``RedisHistoryProvider`` (scoped, its default):
  ``{key_prefix}|v2|{tenant}|{application}|{agent}|{source_id}|{session_id}``. Each part is
  written by ``agent_framework._filesystem._storage_key_segment``: verbatim when literal-safe,
  else ``~redis-<part>-`` + lowercase unpadded base32 of its UTF-8, or ``~redis-<part>-sha256-<hex>``
  when that would exceed 180 characters; ``~none`` for an absent tenant or agent
  (``agent_framework_redis/_history_provider.py``, ``_redis_key``, 1.0.0b261022).

LangChain's community ``RedisChatMessageHistory`` (``langchain_community/chat_message_histories/redis.py``):
``{key_prefix}{session_id}`` (``key_prefix="message_store:"``), an LPUSH of
``json.dumps(message_to_dict(m))`` per message, so newest first.

Nothing here touches Redis: a layout turns keys into threads and list entries into the
message dicts this package stores (``_ops/migrate.py`` runs the migration).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._core.keyspace import COMPANION_SUFFIXES

__all__ = [
    "AgentFrameworkRedisLayout",
    "EntryError",
    "LangChainLayout",
    "SourceLayout",
    "SourceThread",
    "langchain_to_messages",
    "storage_key_segment",
]

# -- what a layout finds ----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceThread:
    """One source key that holds a thread; ``problem`` says why it cannot be migrated, if so."""

    key: str
    thread_id: str | None
    labels: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


class EntryError(ValueError):
    """A source list entry that is not a message of its store; ``index`` is its LINDEX index."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"entry {index}: {reason}")


class SourceLayout(Protocol):
    """Where one kind of store keeps its threads, and how to read its entries."""

    name: str
    patterns: tuple[str, ...]

    def thread(self, key: str) -> SourceThread | None:
        """The thread ``key`` holds, or None if it is not one of this layout's threads."""
        ...

    def messages(self, entries: Sequence[str]) -> list[dict[str, Any]]:
        """The thread's messages, oldest first, as message dicts; raises ``EntryError``."""
        ...


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


# A key of this package's own layout (``{prefix}:{<id>}`` and its companions), which a source
# prefix may share on the same server: never read as another store's thread.
_COMPANIONS = "|".join(COMPANION_SUFFIXES)
_OWN_KEY = re.compile(r":\{[^{}]*\}(?::(?:" + _COMPANIONS + r"))?\Z")


# -- Microsoft agent-framework-redis --------------------------------------------------------

# agent_framework/_filesystem.py (agent-framework-core 1.x): the stems a literal segment may not use.
_WINDOWS_RESERVED_STEMS = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{device}{n}" for device in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)
_MAX_SEGMENT = 180
_DIGEST_MARK = "sha256-"
_ABSENT = "~none"
KEY_PREFIX_MARK = "~redis-key-prefix-"
TENANT_MARK = "~redis-tenant-"
APPLICATION_MARK = "~redis-application-"
AGENT_MARK = "~redis-agent-"
SOURCE_MARK = "~redis-source-"
SESSION_MARK = "~redis-session-"
TEMPLATE_FIELDS = ("tenant", "application", "agent", "source_id", "session_id")


def _literal_safe(value: str) -> bool:
    # agent_framework._filesystem._is_literal_storage_key_segment_safe, same rules.
    if (
        not value
        or value.startswith(".")
        or value.endswith((" ", "."))
        or value.split(".", maxsplit=1)[0].upper() in _WINDOWS_RESERVED_STEMS
    ):
        return False
    if any(ord(character) < 32 for character in value):
        return False
    return all(
        character.isascii() and ((character.isalnum() and not character.isupper()) or character in "._-")
        for character in value
    )


def storage_key_segment(value: str, mark: str) -> str:
    """One key segment as ``agent_framework._filesystem._storage_key_segment`` writes it."""
    if _literal_safe(value):
        return value
    encoded = f"{mark}{base64.b32encode(value.encode('utf-8')).decode('ascii').rstrip('=').lower()}"
    if len(encoded) <= _MAX_SEGMENT:
        return encoded
    return f"{mark}{_DIGEST_MARK}{hashlib.sha256(value.encode('utf-8')).hexdigest()}"


@dataclass(frozen=True)
class _Segment:
    value: str | None  # None: absent (~none), or only its digest is stored
    hashed: bool = False


def _read_segment(segment: str, mark: str, *, optional: bool = False) -> _Segment:
    """The value a key segment was written from; raises ValueError if no value writes it."""
    if optional and segment == _ABSENT:
        return _Segment(None)
    if not segment.startswith(mark):
        if not _literal_safe(segment):
            raise ValueError(f"segment {segment!r} is neither a literal nor {mark}<base32>")
        return _Segment(segment)
    encoded = segment[len(mark) :]
    if encoded.startswith(_DIGEST_MARK):
        return _Segment(None, hashed=True)
    try:
        padding = "=" * (-len(encoded) % 8)
        value = base64.b32decode(encoded.upper() + padding).decode("utf-8")
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"segment {segment!r} is not base32 of UTF-8 text") from err
    if storage_key_segment(value, mark) != segment:
        raise ValueError(f"segment {segment!r} is not how RedisHistoryProvider writes {value!r}")
    return _Segment(value)


def check_thread_id_template(template: str | None) -> str | None:
    """``template`` if it is usable for ``str.format`` with the scope fields, else raise naming it."""
    if template is None:
        return None
    if not isinstance(template, str):
        raise TypeError(f"thread_id_template must be a str, got {type(template).__name__}")
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:
        raise ValueError(f"thread_id_template {template!r} is not a format string: {err}") from err
    unknown = sorted(name for name in fields if name not in TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(
            f"thread_id_template {template!r} names {', '.join(map(repr, unknown))}; "
            f"it may use {', '.join('{' + name + '}' for name in TEMPLATE_FIELDS)}"
        )
    if "session_id" not in fields:
        raise ValueError(f"thread_id_template {template!r} must contain {{session_id}}: without it sessions merge")
    return template


class AgentFrameworkRedisLayout:
    """Microsoft's agent-framework-redis: both key layouts under one key prefix.

    ``source_id`` keeps only the scoped threads of that provider ``source_id``;
    ``thread_id_template`` (``str.format`` with ``tenant``, ``application``, ``agent``,
    ``source_id``, ``session_id``; absent parts are ``""``) names scoped threads.
    """

    name = "agent-framework-redis"

    def __init__(self, key_prefix: str, *, source_id: str | None = None, thread_id_template: str | None = None) -> None:
        if not isinstance(key_prefix, str) or not key_prefix:
            raise ValueError(f"source_key_prefix must be a non-empty str, got {key_prefix!r}")
        if source_id is not None and (not isinstance(source_id, str) or not source_id):
            raise ValueError(f"source_id must be a non-empty str or None, got {source_id!r}")
        self._legacy_head = f"{key_prefix}:"
        self._scoped_head = f"{storage_key_segment(key_prefix, KEY_PREFIX_MARK)}|v2|"
        self._source = storage_key_segment(source_id, SOURCE_MARK) if source_id is not None else None
        self._template = check_thread_id_template(thread_id_template)
        self.patterns = (f"{_glob_escape(self._legacy_head)}*", f"{_glob_escape(self._scoped_head)}*")

    def thread(self, key: str) -> SourceThread | None:
        if key.startswith(self._scoped_head):
            return self._scoped(key)
        if not key.startswith(self._legacy_head) or _OWN_KEY.search(key):
            return None
        thread_id = key[len(self._legacy_head) :]
        if not thread_id:
            return SourceThread(key, None, problem="the key names no thread id")
        return SourceThread(key, thread_id)

    def _scoped(self, key: str) -> SourceThread | None:
        parts = key[len(self._scoped_head) :].split("|")
        if len(parts) != 5:
            return None
        if self._source is not None and parts[3] != self._source:
            return None
        try:
            tenant = _read_segment(parts[0], TENANT_MARK, optional=True)
            application = _read_segment(parts[1], APPLICATION_MARK)
            agent = _read_segment(parts[2], AGENT_MARK, optional=True)
            source = _read_segment(parts[3], SOURCE_MARK)
            session = _read_segment(parts[4], SESSION_MARK)
        except ValueError as err:
            return SourceThread(key, None, problem=f"not a RedisHistoryProvider key: {err}")
        # A part stored only as its digest is labelled with the stored segment: the value is gone.
        scope = {
            "tenant": tenant.value if not tenant.hashed else parts[0],
            "application": application.value if not application.hashed else parts[1],
            "agent": agent.value if not agent.hashed else parts[2],
        }
        labels = {name: value for name, value in scope.items() if value is not None}
        if session.value is None:
            return SourceThread(
                key,
                None,
                labels,
                problem="the key holds only a SHA-256 of the session id (longer than RedisHistoryProvider "
                "encodes), so the session id, and with it the thread id, is unknown",
            )
        thread_id = session.value
        if self._template is not None:
            source_id = source.value if not source.hashed else parts[3]
            values = {**{k: v or "" for k, v in scope.items()}, "source_id": source_id or "", "session_id": thread_id}
            thread_id = self._template.format(**values)
        return SourceThread(key, thread_id, labels)

    def messages(self, entries: Sequence[str]) -> list[dict[str, Any]]:
        # Kept as stored: the codec reads either generation's spelling, so nothing is lost.
        return [_json_object(entry, index) for index, entry in enumerate(entries)]


def _json_object(entry: str, index: int) -> dict[str, Any]:
    try:
        data = json.loads(entry)
    except ValueError as err:
        raise EntryError(index, f"not JSON ({err})") from err
    if not isinstance(data, dict):
        raise EntryError(index, f"expected a JSON object, got {type(data).__name__}")
    return data


# -- LangChain community RedisChatMessageHistory ----------------------------------------------


class LangChainLayout:
    """LangChain community ``RedisChatMessageHistory``: ``{key_prefix}{session_id}``, newest first."""

    name = "langchain"

    def __init__(self, key_prefix: str) -> None:
        if not isinstance(key_prefix, str) or not key_prefix:
            raise ValueError(f"source_key_prefix must be a non-empty str, got {key_prefix!r}")
        self._prefix = key_prefix
        self.patterns = (f"{_glob_escape(key_prefix)}*",)

    def thread(self, key: str) -> SourceThread | None:
        if not key.startswith(self._prefix) or _OWN_KEY.search(key):
            return None
        session_id = key[len(self._prefix) :]
        if not session_id:
            return SourceThread(key, None, problem="the key names no session id")
        return SourceThread(key, session_id)

    def messages(self, entries: Sequence[str]) -> list[dict[str, Any]]:
        newest_last = len(entries) - 1
        # LPUSH keeps the newest first; the store and the framework want the oldest first.
        items = [(newest_last - i, _json_object(entry, newest_last - i)) for i, entry in enumerate(reversed(entries))]
        return langchain_to_messages(items)


# LangChain message types (message_to_dict's "type") and the framework role of each.
_LANGCHAIN_KINDS = {
    "human": "human",
    "HumanMessageChunk": "human",
    "ai": "ai",
    "AIMessageChunk": "ai",
    "system": "system",
    "SystemMessageChunk": "system",
    "tool": "tool",
    "ToolMessageChunk": "tool",
    "function": "function",
    "FunctionMessageChunk": "function",
    "chat": "chat",
    "ChatMessageChunk": "chat",
}
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}
_CHAT_ROLES = {"human": "user", "ai": "assistant"}
# Fields of a LangChain message that become framework fields; the rest is kept as metadata.
_CONVERTED = {"content", "type", "id", "name", "tool_calls", "tool_call_id", "role"}
_MEDIA_DEFAULTS = {"image": "image/*", "image_url": "image/*", "audio": "audio/*", "video": "video/*"}


def _empty(name: str, value: Any) -> bool:
    # Defaults LangChain writes on every message: keeping them would only add noise.
    return value in (None, "", {}, []) or (name == "status" and value == "success") or (name == "example" and not value)


def langchain_to_messages(items: Sequence[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """``message_to_dict`` records, oldest first with their source index, as framework message dicts.

    human/ai/system/tool become user/assistant/system/tool; an AI message's ``tool_calls`` become
    ``function_call`` contents (``call_id``, ``name``, ``arguments``) and a tool message a
    ``function_result`` with its ``tool_call_id``. Older OpenAI ``function_call`` /
    ``function`` pairs get a call id of their own. What has no framework field (response and
    usage metadata, unconverted content blocks, artifacts) is kept under
    ``additional_properties["langchain"]``.
    """
    pending_functions: dict[str, list[str]] = {}
    return [_langchain_message(index, item, pending_functions) for index, item in items]


def _langchain_message(index: int, item: dict[str, Any], pending_functions: dict[str, list[str]]) -> dict[str, Any]:
    kind_name = item.get("type")
    data = item.get("data")
    if not isinstance(kind_name, str) or not isinstance(data, dict):
        raise EntryError(index, "expected LangChain's message_to_dict form {'type': ..., 'data': {...}}")
    kind = _LANGCHAIN_KINDS.get(kind_name)
    if kind is None:
        raise EntryError(index, f"LangChain message type {kind_name!r} has no framework equivalent")
    metadata = {k: v for k, v in data.items() if k not in _CONVERTED and not _empty(k, v)}
    if kind == "chat":
        role = data.get("role")
        if not isinstance(role, str) or not role:
            raise EntryError(index, f"a LangChain chat message needs a role, got {role!r}")
        role = _CHAT_ROLES.get(role, role)
    else:
        role = _ROLES[kind]
    try:
        if kind in ("tool", "function"):
            contents = [_function_result(index, kind, data, pending_functions)]
            if data.get("name") is not None:
                metadata["name"] = data["name"]
        else:
            calls = _function_calls(index, data, metadata, pending_functions) if kind == "ai" else []
            contents, lossless = _content(data.get("content", ""), {call["call_id"] for call in calls})
            if not lossless:
                metadata["content"] = data.get("content")
            contents += calls
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise EntryError(index, f"LangChain {kind_name} message: {type(err).__name__}: {err}") from err
    message: dict[str, Any] = {"type": "message", "role": role, "contents": contents}
    if isinstance(data.get("id"), str) and data["id"]:
        message["message_id"] = data["id"]
    if kind not in ("tool", "function") and isinstance(data.get("name"), str) and data["name"]:
        message["author_name"] = data["name"]
    if metadata:
        message["additional_properties"] = {"langchain": metadata}
    return message


def _content(content: Any, call_ids: set[str]) -> tuple[list[dict[str, Any]], bool]:
    """Framework contents of a LangChain ``content``, and whether nothing was left out.

    ``call_ids`` are the message's tool calls: a block repeating one of them (Anthropic's
    ``tool_use``) is represented by its ``function_call`` content.
    """
    if isinstance(content, str):
        return ([{"type": "text", "text": content}] if content else []), True
    if not isinstance(content, list):
        raise TypeError(f"content must be a str or a list of blocks, got {type(content).__name__}")
    contents: list[dict[str, Any]] = []
    lossless = True
    for block in content:
        if isinstance(block, str):
            contents.append({"type": "text", "text": block})
            continue
        if not isinstance(block, dict):
            lossless = False
            continue
        if block.get("type") in _CALL_BLOCKS and block.get("id") in call_ids:
            continue
        converted, complete = _block(block)
        if converted is not None:
            contents.append(converted)
        lossless = lossless and complete
    return contents, lossless


# Content blocks that repeat a tool call of the message (Anthropic, LangChain's standard blocks).
_CALL_BLOCKS = {"tool_use", "tool_call", "function_call", "server_tool_use"}
# The keys of each block kind that the framework content holds in full.
_BLOCK_KEYS = {
    "text": {"type", "text"},
    "reasoning": {"type", "reasoning"},
    "thinking": {"type", "thinking"},
    "image_url": {"type", "image_url"},
    "media": {"type", "url", "base64", "data", "mime_type", "source_type"},
}


def _block(block: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """One content block as a framework content (or None), and whether it says everything the block does."""
    kind = block.get("type")
    converted: dict[str, Any] | None = None
    if kind == "text" and isinstance(block.get("text"), str):
        converted = {"type": "text", "text": block["text"]}
    elif kind in ("reasoning", "thinking") and isinstance(block.get(kind), str):
        converted = {"type": "text_reasoning", "text": block[kind]}
    elif kind == "image_url":
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str):
            converted = _media(url, None, kind)
        if isinstance(image, dict) and set(image) - {"url"}:
            return converted, False  # e.g. OpenAI's "detail"
    elif kind in ("image", "audio", "video", "file"):
        mime = block.get("mime_type") if isinstance(block.get("mime_type"), str) else None
        data = block.get("base64") or (block.get("data") if block.get("source_type") == "base64" else None)
        url = block.get("url")
        if isinstance(data, str):
            converted = _media(f"data:{mime or 'application/octet-stream'};base64,{data}", mime, kind)
        elif isinstance(url, str):
            converted = _media(url, mime, kind)
        kind = "media"
    complete = converted is not None and not set(block) - _BLOCK_KEYS.get(str(kind), set())
    return converted, complete


def _media(url: str, mime: str | None, kind: str) -> dict[str, Any]:
    if url.startswith("data:"):
        declared = url[5:].split(",", 1)[0].split(";", 1)[0]
        return {"type": "data", "uri": url, "media_type": mime or declared or "application/octet-stream"}
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    # The legacy framework requires a media type on a URI; a client reads its top-level type.
    media_type = mime or guessed or _MEDIA_DEFAULTS.get(kind, "application/octet-stream")
    return {"type": "uri", "uri": url, "media_type": media_type}


def _function_calls(
    index: int, data: dict[str, Any], metadata: dict[str, Any], pending_functions: dict[str, list[str]]
) -> list[dict[str, Any]]:
    kwargs = dict(metadata.get("additional_kwargs") or {})
    calls: list[dict[str, Any]] = []
    tool_calls = data.get("tool_calls") or []
    if tool_calls:
        for position, call in enumerate(tool_calls):
            calls.append(_call(call.get("id") or f"langchain-call-{index}-{position}", call["name"], call.get("args")))
        kwargs.pop("tool_calls", None)  # the provider's raw copy of the same calls
    elif kwargs.get("tool_calls"):
        # Older LangChain kept only OpenAI's raw form.
        for position, call in enumerate(kwargs.pop("tool_calls")):
            function = call["function"]
            calls.append(
                _call(
                    call.get("id") or f"langchain-call-{index}-{position}", function["name"], function.get("arguments")
                )
            )
    if isinstance(kwargs.get("function_call"), dict):
        # OpenAI's pre-tools function calling has no call id: one is made, and the next
        # function message of that name answers it.
        function = kwargs.pop("function_call")
        call_id = f"langchain-function-call-{index}"
        pending_functions.setdefault(function["name"], []).append(call_id)
        calls.append(_call(call_id, function["name"], function.get("arguments")))
    if kwargs:
        metadata["additional_kwargs"] = kwargs
    else:
        metadata.pop("additional_kwargs", None)
    return calls


def _call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    # LangChain parses arguments into a dict; OpenAI's raw form keeps the JSON text. Both read.
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments or {}}


def _text_only(content: list[Any]) -> bool:
    return all(
        isinstance(b, str) or (isinstance(b, dict) and b.keys() == {"type", "text"} and b["type"] == "text")
        for b in content
    )


def _function_result(
    index: int, kind: str, data: dict[str, Any], pending_functions: dict[str, list[str]]
) -> dict[str, Any]:
    content = data.get("content", "")
    if isinstance(content, list) and _text_only(content):
        content = "".join(b if isinstance(b, str) else b["text"] for b in content)
    if kind == "tool":
        call_id = data.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise ValueError("a tool message needs its tool_call_id")
    else:
        waiting = pending_functions.get(data.get("name") or "", [])
        call_id = waiting.pop(0) if waiting else f"langchain-function-result-{index}"
    return {"type": "function_result", "call_id": call_id, "result": content}
