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
message dicts this package stores (``_ops/migrate.py`` runs the migration). LangChain's
messages are converted as the LangChain history converts them, one conversation at a time
(``_adapters/langchain_messages.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._adapters.langchain_messages import LangChainConversation
from .._core.keyspace import COMPANION_SUFFIXES

__all__ = [
    "AgentFrameworkRedisLayout",
    "EntryError",
    "LangChainLayout",
    "SourceLayout",
    "SourceThread",
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
        # LPUSH keeps the newest first; the store and the framework want the oldest first.
        conversation = LangChainConversation()
        messages: list[dict[str, Any]] = []
        for index in range(len(entries) - 1, -1, -1):
            data = _json_object(entries[index], index)
            try:
                messages.append(conversation.convert(data))
            except (TypeError, ValueError) as err:
                raise EntryError(index, str(err)) from err
        return messages
