"""How one framework message becomes one Redis list entry, and back.

An entry is the compact JSON of the framework's own ``to_dict()``. The two Agent
Framework generations spell a few fields differently; ``decode_message`` accepts
either spelling, so a thread written by one generation reads in the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .compat import framework_message_class, generation
from .encryption import MessageEncryption, decrypt_entry
from .errors import CorruptMessageError

if TYPE_CHECKING:
    from .compat import FrameworkMessage

__all__ = ["OpenedEntry", "decode_entry", "encode_message", "encode_message_dict", "message_from_dict", "open_entry"]

# What parsing a damaged entry can raise, from json and from the frameworks' from_dict.
_DAMAGED = (ValueError, TypeError, KeyError, AttributeError, RecursionError)


def encode_message(message: FrameworkMessage) -> str:
    """Serialize a framework message to the compact JSON stored in Redis."""
    return encode_message_dict(message.to_dict(exclude_none=True))


def encode_message_dict(data: dict[str, Any]) -> str:
    """The stored JSON of a message's ``to_dict(exclude_none=True)``."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class OpenedEntry:
    """One stored entry, decrypted: its JSON ``text``, and where it was (``key``, ``index``) for errors."""

    text: str
    key: str
    index: int

    def decode(self) -> tuple[dict[str, Any], FrameworkMessage]:
        """The message dict and framework message; ``CorruptMessageError`` naming key and index if it is not one."""
        try:
            data = json.loads(self.text)
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            return data, message_from_dict(data)
        except _DAMAGED as err:
            raise CorruptMessageError(self.key, self.index, f"{type(err).__name__}: {err}") from err


def open_entry(entry: bytes | str, *, encryption: MessageEncryption | None, key: str, index: int) -> OpenedEntry:
    """One stored entry, decrypted (``DecryptionError`` naming ``key`` and ``index`` if it cannot be)."""
    opened = decrypt_entry(encryption, entry, key=key, index=index)
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
    """One stored entry as its message dict and framework message.

    Raises ``CorruptMessageError`` (``DecryptionError`` when it cannot be decrypted) naming
    the list ``key`` and the entry's ``index``; nothing else is read or changed.
    """
    return open_entry(entry, encryption=encryption, key=key, index=index).decode()


def message_from_dict(data: dict[str, Any]) -> FrameworkMessage:
    """Build a framework message from a dict written by either generation.

    The frameworks themselves accept almost anything here; the shape is checked first so
    that a damaged entry is reported instead of becoming a message with no role.
    """
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
    if isinstance(content, dict) and content.get("type") == "usage" and "usage_details" in content:
        out = {k: v for k, v in content.items() if k != "usage_details"}
        details = content["usage_details"]
        if isinstance(details, dict):
            out["details"] = {"type": "usage_details", **details}
        return out
    return content
