"""The options every public class takes, declared once and validated in one place.

Each public class accepts ``**options`` typed by one of the ``TypedDict`` s here (its
store options plus ``ConnectionOptions``). ``parse_options`` checks the names, validates
the values into a ``ThreadOptions`` and hands the connection options to ``open_client``:
the same option means the same thing, and fails the same way, on every class.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from .compaction import SummaryCompaction
from .compression import Compression, validate_compression
from .connection import CONNECTION_OPTIONS, ConnectionOptions
from .encryption import MessageEncryption, validate_encryption
from .groups import CharacterEstimator, Tokenizer
from .keyspace import DEFAULT_KEY_PREFIX, Keyspace, check_encodable, validate_key_prefix

__all__ = [
    "CheckpointStorageOptions",
    "RegistryOptions",
    "SessionStoreOptions",
    "StoreOptionAttributes",
    "StoreOptions",
    "ThreadOptions",
    "labels_json",
    "parse_options",
    "validate_labels",
    "validate_max_messages",
    "validate_ttl",
]


class RegistryOptions(ConnectionOptions, total=False):
    """Options of ``RedisThreadRegistry``: connection options and these."""

    key_prefix: str
    """Namespace of the Redis keys (default ``"chat_messages"``)."""
    encryption: MessageEncryption | None
    """Encrypt message bodies at rest (e.g. ``AESGCMEncryption``); never serialized."""


class SessionStoreOptions(RegistryOptions, total=False):
    """Options of ``RedisSessionStore``: the registry's and ``ttl``."""

    ttl: float | timedelta | None
    """Seconds of inactivity after which the data expires; writes refresh it (an append, all of
    a thread's keys together once their TTL has drifted by a minute, or a hundredth of ``ttl``)."""


class StoreOptions(SessionStoreOptions, total=False):
    """Options of the store, its factory and the 1.x history provider."""

    max_messages: int | None
    """Keep only the newest N messages of a thread (None: keep all)."""
    labels: Mapping[str, str] | None
    """str-to-str labels recorded in the thread registry; None keeps the stored labels."""
    registry: bool
    """Record the thread in the key prefix's registry on every write (default True)."""
    context_messages: int | None
    """Hand the model at most the newest N messages (cut where a tool-call group starts)."""
    context_tokens: int | None
    """Hand the model at most N tokens of history (by ``tokenizer``), the summary included."""
    tokenizer: Tokenizer | None
    """Counts tokens (``count_tokens(text)``); default: the framework's 4-characters-a-token estimate."""
    compaction: SummaryCompaction | None
    """Summarize older messages into a summary persisted in Redis (``SummaryCompaction``). Without
    ``context_messages`` and ``context_tokens``, the model gets the summary and at most twice the
    compaction's trigger of the messages after it (while a summary is late), cut at a group start."""
    compression: Compression | None
    """``"zlib"``: store message bodies of 512 bytes or more compressed (before encryption); None: plain JSON."""


class CheckpointStorageOptions(SessionStoreOptions, total=False):
    """Options of ``RedisCheckpointStorage``: the session store's (``ttl`` per workflow) and these."""

    keep_last: int | None
    """Keep only the newest N checkpoints of each workflow name (None: keep all)."""
    compression: Compression | None
    """``"zlib"``: store checkpoints of 512 bytes or more compressed (before encryption); None: plain JSON."""
    allowed_checkpoint_types: Sequence[str] | None
    """1.x: ``"module:qualname"`` types loads may unpickle beyond the framework's safe set (as
    ``FileCheckpointStorage``'s)."""


def validate_max_messages(value: object, name: str = "max_messages") -> int | None:
    """``value`` if it is None or an int of at least 1, else raise naming ``name``."""
    return validate_positive(value, name)


def validate_ttl(value: object, name: str = "ttl") -> float | None:
    """``value`` in seconds if it is None, a positive number or a timedelta, else raise naming ``name``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be seconds (int, float or timedelta) or None, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds (or None for no expiry), got {value}")
    return float(value)


def validate_positive(value: object, name: str) -> int | None:
    """``value`` if it is None or an int of at least 1, else raise naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 (or None for no limit), got {value}")
    return value


def validate_labels(labels: object, *, name: str = "labels") -> dict[str, str] | None:
    """Return ``labels`` as a plain dict if every key and value is a str, else raise naming the entry."""
    if labels is None:
        return None
    if not isinstance(labels, Mapping):
        raise TypeError(f"{name} must be a dict of str to str, got {type(labels).__name__}")
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name} keys must be non-empty str, got {key!r}")
        if "=" in key:
            # The CLI filters with KEY=VALUE; a key holding '=' could never be matched.
            raise ValueError(f"{name} key {key!r} must not contain '='")
        check_encodable(key, f"{name} key {key!r}")
        if not isinstance(value, str):
            raise TypeError(f"{name}[{key!r}] must be a str, got {type(value).__name__}")
        check_encodable(value, f"{name}[{key!r}]")
        checked[key] = value
    return checked


def labels_json(labels: Mapping[str, str] | None) -> str:
    """The labels as stored in the meta hash ('' for None: keep whatever is stored)."""
    if labels is None:
        return ""
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ThreadOptions:
    """Validated store options; constructing one raises naming any bad option."""

    key_prefix: str = DEFAULT_KEY_PREFIX
    max_messages: int | None = None
    ttl: float | None = None
    encryption: MessageEncryption | None = field(default=None, repr=False)
    labels: dict[str, str] | None = None
    registry: bool = True
    context_messages: int | None = None
    context_tokens: int | None = None
    tokenizer: Tokenizer = field(default_factory=CharacterEstimator)
    compaction: SummaryCompaction | None = None
    compression: Compression | None = None

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: normalised values are set once, here
        set_field(self, "key_prefix", validate_key_prefix(self.key_prefix))
        set_field(self, "max_messages", validate_max_messages(self.max_messages))
        set_field(self, "ttl", validate_ttl(self.ttl))
        set_field(self, "encryption", validate_encryption(self.encryption))
        set_field(self, "labels", validate_labels(self.labels))
        if not isinstance(self.registry, bool):
            raise TypeError(f"registry must be a bool, got {type(self.registry).__name__}")
        set_field(self, "context_messages", validate_positive(self.context_messages, "context_messages"))
        set_field(self, "context_tokens", validate_positive(self.context_tokens, "context_tokens"))
        if self.tokenizer is None:
            set_field(self, "tokenizer", CharacterEstimator())
        elif not callable(getattr(self.tokenizer, "count_tokens", None)):
            raise TypeError(f"tokenizer must have a count_tokens(text) method, got {type(self.tokenizer).__name__}")
        if self.compaction is not None and not isinstance(self.compaction, SummaryCompaction):
            raise TypeError(f"compaction must be a SummaryCompaction, got {type(self.compaction).__name__}")
        set_field(self, "compression", validate_compression(self.compression))

    @property
    def windowed(self) -> bool:
        """True when the model gets less than every message after the summary."""
        return self.context_messages is not None or self.context_tokens is not None

    @property
    def keyspace(self) -> Keyspace:
        """The keys under ``key_prefix``."""
        return Keyspace(self.key_prefix)

    @property
    def ttl_ms(self) -> int:
        """The TTL in milliseconds, 0 for none (as the scripts take it)."""
        return 0 if self.ttl is None else max(1, int(self.ttl * 1000))

    @property
    def labels_json(self) -> str:
        """The labels as the scripts store them ('' keeps the stored labels)."""
        return labels_json(self.labels)


_THREAD_OPTIONS = frozenset(f.name for f in fields(ThreadOptions))


class StoreOptionAttributes:
    """The store options as read-only attributes (``store.max_messages``), as agent-framework-redis has them.

    Read-only: the options are validated once, when the object is made; a changed copy is a
    new object (``RedisChatMessageStore(..., max_messages=50)``).
    """

    _options: ThreadOptions

    @property
    def key_prefix(self) -> str:
        """The namespace of the Redis keys."""
        return self._options.key_prefix

    @property
    def max_messages(self) -> int | None:
        """The newest N messages kept, or None for all."""
        return self._options.max_messages

    @property
    def ttl(self) -> float | None:
        """The sliding expiry in seconds, or None."""
        return self._options.ttl

    @property
    def labels(self) -> dict[str, str] | None:
        """The labels recorded in the registry (a copy), or None."""
        labels = self._options.labels
        return None if labels is None else dict(labels)

    @property
    def registry(self) -> bool:
        """Whether threads are recorded in the key prefix's registry."""
        return self._options.registry

    @property
    def context_messages(self) -> int | None:
        """At most N newest messages handed to the model, or None."""
        return self._options.context_messages

    @property
    def context_tokens(self) -> int | None:
        """At most N tokens of history handed to the model, or None."""
        return self._options.context_tokens

    @property
    def tokenizer(self) -> Tokenizer:
        """What counts tokens for ``context_tokens``."""
        return self._options.tokenizer

    @property
    def compaction(self) -> SummaryCompaction | None:
        """The summary policy, or None."""
        return self._options.compaction

    @property
    def compression(self) -> Compression | None:
        """``"zlib"`` or None."""
        return self._options.compression

    @property
    def encryption(self) -> MessageEncryption | None:
        """The encryption of message bodies at rest, or None (never serialized)."""
        return self._options.encryption


def parse_options(owner: str, options: Mapping[str, Any], accepted: type[Any]) -> tuple[ThreadOptions, dict[str, Any]]:
    """Split ``options`` into validated ``ThreadOptions`` and connection options.

    ``accepted`` is the owner's options ``TypedDict``; a name it does not declare raises
    ``TypeError`` naming the owner and the name, as Python does for a keyword argument.
    """
    names: frozenset[str] = accepted.__optional_keys__ | accepted.__required_keys__
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
    thread = ThreadOptions(**{k: v for k, v in options.items() if k in _THREAD_OPTIONS})
    connection = {k: v for k, v in options.items() if k in CONNECTION_OPTIONS}
    return thread, connection
