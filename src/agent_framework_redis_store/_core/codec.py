"""How one framework message becomes one Redis list entry, and back.

An entry is the compact JSON of the framework's own ``to_dict()``, less what reads back by
itself (``compact_message``): the message's ``type``, empty ``additional_properties``, the
legacy role's wrapper (``{"type": "role", "value": "user"}`` is stored as ``"user"``), a plain
text content (stored as its string, the shorthand the frameworks' constructors take), and a
1.x function result's ``result`` when it is the text of its ``items``. ``expand_message`` puts
back what ``from_dict`` does not, so a message reads back exactly as it was written, in
either generation; entries written in full (by earlier versions) read as they always did.

The two Agent Framework generations spell a few fields differently; ``message_from_dict``
accepts either spelling, so a thread written by one generation reads in the other. An entry
may also be compressed (``compression``) and sealed (``encryption``): ``open_entry`` opens both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .compat import framework_message_class, generation
from .compression import decompress, is_compressed
from .encryption import MessageEncryption, decrypt_entry
from .errors import CorruptMessageError

if TYPE_CHECKING:
    from .compat import FrameworkMessage

__all__ = [
    "OpenedEntry",
    "compact_message",
    "decode_entry",
    "encode_message",
    "encode_message_dict",
    "expand_message",
    "message_from_dict",
    "open_entry",
]

# What parsing a damaged entry can raise, from json and from the frameworks' from_dict.
_DAMAGED = (ValueError, TypeError, KeyError, AttributeError, RecursionError)
_MESSAGE_TYPES = frozenset({"message", "chat_message"})
_DERIVED = object()  # a function result stored without its result: the text of its items


def encode_message(message: FrameworkMessage) -> str:
    """Serialize a framework message to the compact JSON stored in Redis."""
    return encode_message_dict(message.to_dict(exclude_none=True))


def encode_message_dict(data: dict[str, Any]) -> str:
    """The stored JSON of a message's ``to_dict(exclude_none=True)`` (``compact_message``'s)."""
    return json.dumps(compact_message(data), separators=(",", ":"), ensure_ascii=False)


def compact_message(data: dict[str, Any]) -> dict[str, Any]:
    """A message dict without what reads back by itself, in either generation.

    Only the framework's own fields are touched, never what a message carries as data (its
    ``additional_properties``, a call's ``arguments``, a result's value), and nothing either
    generation would read differently: a 1.x field the legacy generation keeps as a foreign
    key (a call's ``hosted``, a result's ``items``) stays as it was.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "type" and value in _MESSAGE_TYPES:
            continue
        if key == "additional_properties" and value == {}:
            continue
        if key == "role":
            value = _role_name(value)
        elif key == "contents" and isinstance(value, list):
            value = [_compact_content(content) for content in value]
        out[key] = value
    return out


def _role_name(role: Any) -> Any:
    """The legacy ``{"type": "role", "value": "user"}`` as ``"user"`` (either generation reads both)."""
    if isinstance(role, dict) and role.keys() == {"type", "value"} and role["type"] == "role":
        value = role["value"]
        if isinstance(value, str) and value:
            return value
    return role


def _compact_content(content: Any) -> Any:
    if not isinstance(content, dict):
        return content
    out = {k: v for k, v in content.items() if not (k == "additional_properties" and v == {})}
    kind = out.get("type")
    if kind == "text" and len(out) == 2 and isinstance(out.get("text"), str):
        return out["text"]
    if kind == "function_result" and isinstance(out.get("items"), list):
        out["items"] = items = [_compact_content(item) for item in out["items"]]
        # A plain text item marks the compact form, in which an absent result is the text of
        # the items (as from_function_result makes it) and a null one is none.
        if any(isinstance(item, str) for item in items):
            if "result" not in out:
                out["result"] = None
            elif out["result"] == _items_text(items):
                del out["result"]
    call = out.get("function_call")
    if isinstance(call, dict):
        out["function_call"] = {k: v for k, v in call.items() if not (k == "additional_properties" and v == {})}
    return out


def _items_text(items: list[Any]) -> str:
    """A function result's text, as ``from_function_result`` makes it from its items (either form)."""
    texts = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("text") if item.get("type") == "text" else None
        if isinstance(item, str) and item:
            texts.append(item)
    return "\n".join(texts)


def expand_message(data: dict[str, Any]) -> dict[str, Any]:
    """A stored message dict with what ``compact_message`` left out that ``from_dict`` does not restore.

    Plain text contents become text contents again and a function result gets its ``result``
    back. A dict in full (written by an earlier version) is returned unchanged.
    """
    contents = data.get("contents")
    if not isinstance(contents, list):
        return data
    expanded = [_expand_content(content) for content in contents]
    if all(new is old for new, old in zip(expanded, contents, strict=True)):
        return data
    return {**data, "contents": expanded}


def _expand_content(content: Any) -> Any:
    if isinstance(content, str):
        return {"type": "text", "text": content}
    if not isinstance(content, dict) or content.get("type") != "function_result":
        return content
    items = content.get("items")
    if not isinstance(items, list) or not any(isinstance(item, str) for item in items):
        return content  # not compacted (see _compact_content)
    expanded = [_expand_content(item) for item in items]
    out = {**content, "items": expanded}
    if "result" not in out:
        out["result"] = _items_text(expanded)
    elif out["result"] is None:
        del out["result"]
    return out


@dataclass(frozen=True, slots=True)
class OpenedEntry:
    """One stored entry, decrypted: its JSON ``text``, and where it was (``key``, ``index``) for errors."""

    text: str
    key: str
    index: int

    def decode(self) -> tuple[dict[str, Any], FrameworkMessage]:
        """The message dict (expanded) and message; ``CorruptMessageError`` naming key and index if it is not one."""
        try:
            data = json.loads(self.text)
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            data = expand_message(data)
            return data, _from_expanded(data)
        except _DAMAGED as err:
            raise CorruptMessageError(self.key, self.index, f"{type(err).__name__}: {err}") from err


def open_entry(entry: bytes | str, *, encryption: MessageEncryption | None, key: str, index: int) -> OpenedEntry:
    """One stored entry, decrypted and decompressed (``DecryptionError`` naming ``key`` and ``index`` if it
    cannot be decrypted, ``CorruptMessageError`` if its compressed body is damaged)."""
    opened = decrypt_entry(encryption, entry, key=key, index=index)
    if is_compressed(opened):
        try:
            return OpenedEntry(decompress(opened), key, index)
        except ValueError as err:
            raise CorruptMessageError(key, index, str(err)) from err
    if isinstance(opened, bytes):
        try:
            # Entries are UTF-8; json.loads would guess UTF-16 or UTF-32 for some damaged bytes.
            opened = opened.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptMessageError(key, index, f"UnicodeDecodeError: {err}") from err
    return OpenedEntry(opened, key, index)


def decode_entry(
    entry: bytes | str, *, encryption: MessageEncryption | None, key: str, index: int
) -> tuple[dict[str, Any], FrameworkMessage]:
    """One stored entry as its message dict (expanded) and framework message.

    Raises ``CorruptMessageError`` (``DecryptionError`` when it cannot be decrypted) naming
    the list ``key`` and the entry's ``index``; nothing else is read or changed.
    """
    return open_entry(entry, encryption=encryption, key=key, index=index).decode()


def message_from_dict(data: dict[str, Any]) -> FrameworkMessage:
    """Build a framework message from a dict written by either generation, compact or in full.

    The frameworks themselves accept almost anything here; the shape is checked first so
    that a damaged entry is reported instead of becoming a message with no role.
    """
    return _from_expanded(expand_message(data))


def _from_expanded(data: dict[str, Any]) -> FrameworkMessage:
    role = data.get("role")
    if isinstance(role, dict):
        role = role.get("value")
    if not isinstance(role, str) or not role:
        raise ValueError(f"'role' must be a non-empty string, got {data.get('role')!r}")
    contents = data.get("contents", [])
    if not isinstance(contents, list) or not all(isinstance(c, dict) and "type" in c for c in contents):
        raise ValueError("'contents' must be a list of objects with a 'type'")
    normalized = _to_current(data) if generation() == "current" else _to_legacy(data)
    return framework_message_class().from_dict(normalized)


def _to_current(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    if out.get("type") == "chat_message":
        out["type"] = "message"
    role = out.get("role")
    if isinstance(role, dict):
        out["role"] = role.get("value")
    if "contents" in out:
        out["contents"] = [_content_to_current(c) for c in out["contents"]]
    return out


def _to_legacy(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    if out.get("type") == "message":
        out["type"] = "chat_message"
    if "contents" in out:
        out["contents"] = [_content_to_legacy(c) for c in out["contents"]]
    return out


def _content_to_current(content: Any) -> Any:
    # The legacy UsageContent keeps its numbers under "details" (a typed dict); 1.x under "usage_details".
    if isinstance(content, dict) and content.get("type") == "usage" and "details" in content:
        out = {k: v for k, v in content.items() if k != "details"}
        details = content["details"]
        if isinstance(details, dict):
            out["usage_details"] = {k: v for k, v in details.items() if k != "type"}
        return out
    return content


def _content_to_legacy(content: Any) -> Any:
    if not isinstance(content, dict):
        return content
    kind = content.get("type")
    if kind == "usage" and "usage_details" in content:
        out = {k: v for k, v in content.items() if k != "usage_details"}
        details = content["usage_details"]
        if isinstance(details, dict):
            out["details"] = {"type": "usage_details", **details}
        return out
    items = content.get("items")
    # The legacy generation keeps a 1.x result's items as they are (raw dicts), as 1.x wrote
    # them: with their additional_properties, which the compact form leaves out when empty.
    if kind == "function_result" and isinstance(items, list) and not all(_has_properties(item) for item in items):
        return {
            **content,
            "items": [item if _has_properties(item) else {**item, "additional_properties": {}} for item in items],
        }
    return content


def _has_properties(item: Any) -> bool:
    return not isinstance(item, dict) or "additional_properties" in item
