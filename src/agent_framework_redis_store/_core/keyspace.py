"""The Redis key layout, in one place: which keys a thread owns, and the operations on all of them.

A thread lives under ``{key_prefix}:{<encoded thread id>}``:

* ``{key_prefix}:{<id>}`` is a list, one JSON message per entry, oldest first;
* ``{key_prefix}:{<id>}:batches`` is a sorted set of recent batch tokens, so a retried
  append is recognised and not stored twice (a thread with ``registry=False``; a registered
  one keeps them in its meta hash, and one written before 0.2 may still have the set);
* ``{key_prefix}:{<id>}:fingerprints`` is a list of the fingerprints of the newest
  messages written by the 1.x history provider, so a replayed message is not stored twice;
* ``{key_prefix}:{<id>}:index`` is a list with one entry per message (its tokens, and
  whether it continues a tool-call group), for group-safe trimming and context windows;
* ``{key_prefix}:{<id>}:compacting`` is the lease of the instance summarizing the thread
  right now (``SummaryCompaction``);
* ``{key_prefix}:{<id>}:session`` is the JSON snapshot of a whole 1.x ``AgentSession``
  (``RedisSessionStore``);
* ``{key_prefix}:{<id>}:meta`` is a hash of registry metadata (created, active, count,
  ttl, labels), ``batches`` (a registered thread's recent batch tokens, hex), ``first``
  (how many messages were ever trimmed from the front) and the
  persisted summary (``summary``, the message, and ``boundary``, the position of the first
  message after it); it expires with the thread.

Per prefix, not a thread's: ``{key_prefix}:registry``, a sorted set of thread ids scored by
last activity (milliseconds), the index the registry pages through, and for each label
``name=value`` in use, ``{key_prefix}:label:<name>=<value>`` (percent-encoded), the same for
the threads carrying that label. They hold no brace and no thread key ends like them, so
they never collide with a thread.

The encoded id is wrapped in braces, a Redis Cluster hash tag: every key of one thread
lands in one slot, so each per-thread operation is a single-slot script. The id is
percent-encoded (RFC 3986 unreserved characters stay as they are), which is injective
and removes ``:``, ``{``, ``}`` and whitespace: no thread id can address another
thread's keys. A key prefix may not contain braces, so it never captures the hash tag.

Workflow checkpoints (``RedisCheckpointStorage``) live under ``{key_prefix}:{wf:<encoded
name>}``: ``:checkpoints`` (hash: checkpoint id -> body) and ``:timeline`` (sorted set: ids in
save order), one slot per workflow; ``{key_prefix}:checkpoints`` (hash: checkpoint id ->
workflow name) finds a checkpoint by id. A thread's encoded id never holds ``:``, and none of
these keys ends with ``}``, so no thread's key is a workflow's and thread scans pass them by.

A new per-thread key is added to ``ThreadKeys`` and nowhere else: deleting, purging,
importing, expiring, forking and erasing a thread all go through ``ThreadKeys.owned``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote, unquote

__all__ = [
    "COMPANION_SUFFIXES",
    "DEFAULT_KEY_PREFIX",
    "Keyspace",
    "ThreadKeys",
    "WorkflowKeys",
    "check_encodable",
    "validate_key_prefix",
    "validate_thread_id",
]

DEFAULT_KEY_PREFIX = "chat_messages"


def check_encodable(text: str, name: str) -> None:
    """Raise naming ``name`` if ``text`` holds a lone surrogate: Redis takes UTF-8 only, and a
    value checked where it is given fails there, not on its first write. The value itself is
    never quoted (it may be a credential)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be valid Unicode text (it contains a lone surrogate)") from None


def validate_thread_id(thread_id: object, *, name: str = "thread_id") -> str:
    """Return ``thread_id`` if it is a usable thread id, else raise naming ``name``."""
    if not isinstance(thread_id, str):
        raise TypeError(f"{name} must be a str, got {type(thread_id).__name__}")
    if not thread_id:
        raise ValueError(f"{name} must be a non-empty str")
    check_encodable(thread_id, name)
    return thread_id


def validate_key_prefix(key_prefix: object, *, name: str = "key_prefix") -> str:
    """Return ``key_prefix`` if it is usable, else raise naming ``name``."""
    if not isinstance(key_prefix, str):
        raise TypeError(f"{name} must be a str, got {type(key_prefix).__name__}")
    if not key_prefix:
        raise ValueError(f"{name} must be a non-empty str")
    if "{" in key_prefix or "}" in key_prefix:
        # A brace in the prefix would become the Redis Cluster hash tag instead of the thread id.
        raise ValueError(f"{name} must not contain '{{' or '}}', got {key_prefix!r}")
    check_encodable(key_prefix, name)
    return key_prefix


# What follows ``{key_prefix}:{<id>}`` in the name of each companion key of a thread: the
# properties below and every tool that must recognise a thread's keys (migrate) use these.
COMPANION_SUFFIXES = ("meta", "batches", "fingerprints", "index", "compacting", "session")


@dataclass(frozen=True, slots=True)
class ThreadKeys:
    """Every Redis key one thread owns. All share the thread's hash tag (one Cluster slot)."""

    thread_id: str
    messages: str
    """List: the thread's messages, oldest first."""

    @property
    def batches(self) -> str:
        """Sorted set: recent batch tokens of an unregistered thread (a retried append is applied once)."""
        return self._companion("batches")

    @property
    def fingerprints(self) -> str:
        """List: fingerprints of the newest messages (repeat detection of the 1.x provider)."""
        return self._companion("fingerprints")

    @property
    def meta(self) -> str:
        """Hash: created, active, count, ttl and labels, for the registry."""
        return self._companion("meta")

    @property
    def session(self) -> str:
        """String: the JSON snapshot of a whole 1.x ``AgentSession``."""
        return self._companion("session")

    @property
    def index(self) -> str:
        """List: per message its tokens, negative when it continues a tool-call group."""
        return self._companion("index")

    @property
    def summary(self) -> str:
        """Not a key: the name of the summary, kept in the meta hash (fields ``summary``, ``boundary``).

        It binds the summary's encryption to this thread and names it in errors. The summary
        lives in the meta hash because an append script may only name keys that exist: Redis
        Cluster refuses a script over a partly migrated set of keys (TRYAGAIN).
        """
        return self.meta + "#summary"

    @property
    def compacting(self) -> str:
        """String: the lease of the instance summarizing the thread right now."""
        return self._companion("compacting")

    @property
    def owned(self) -> tuple[str, ...]:
        """Every key of the thread, messages and meta first (scripts rely on that order)."""
        return (self.messages, *(self._companion(suffix) for suffix in COMPANION_SUFFIXES))

    def _companion(self, suffix: str) -> str:
        return f"{self.messages}:{suffix}"

    @property
    def hash_tag(self) -> str:
        """The ``{...}`` part every key shares: Redis Cluster hashes only that."""
        return self.messages[self.messages.index("{") :]


@dataclass(frozen=True, slots=True)
class WorkflowKeys:
    """The keys of one workflow's checkpoints. Both share the hash tag ``{wf:<name>}`` (one Cluster slot)."""

    workflow_name: str
    checkpoints: str
    """Hash: checkpoint id -> stored checkpoint (JSON, compressed or sealed)."""
    timeline: str
    """Sorted set: checkpoint ids in save order (see ``RedisCheckpointStorage``)."""

    @property
    def owned(self) -> tuple[str, str]:
        """Both keys: bodies first, then the timeline (the scripts rely on that order)."""
        return (self.checkpoints, self.timeline)

    def body_context(self, checkpoint_id: str) -> str:
        """Not a key: what a sealed checkpoint is bound to (this workflow's hash and the id's field)."""
        return f"{self.checkpoints}#{checkpoint_id}"


class Keyspace:
    """The keys of one key prefix: each thread's ``ThreadKeys`` and the prefix-wide registry."""

    __slots__ = ("__dict__", "prefix")

    def __init__(self, prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self.prefix = validate_key_prefix(prefix)

    def __repr__(self) -> str:
        return f"Keyspace({self.prefix!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Keyspace) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)

    @property
    def registry(self) -> str:
        """Sorted set: thread ids by last activity in milliseconds (its own hash slot)."""
        return self.prefix + ":registry"

    def label_index(self, name: str, value: str) -> str:
        """Sorted set: the ids of the threads labelled ``name=value``, by last activity (ms).

        Both parts are percent-encoded as thread ids are (the scripts encode alike), so no
        label can address another label's index, nor a thread's keys.
        """
        return f"{self.prefix}:label:{quote(name, safe='')}={quote(value, safe='')}"

    @property
    def labels_complete(self) -> str:
        """String: present when every registered thread of the prefix is in its label indexes.

        Set by the first thread of a new prefix, or by ``RedisThreadRegistry.reindex``.
        """
        return self.prefix + ":label-index"

    def label_indexes(self, labels: Mapping[str, str] | None) -> list[str]:
        """The label index keys of ``labels``."""
        return [self.label_index(name, value) for name, value in (labels or {}).items()]

    @property
    def checkpoint_index(self) -> str:
        """Hash: checkpoint id -> workflow name, to find a checkpoint by id (its own hash slot)."""
        return self.prefix + ":checkpoints"

    def workflow(self, workflow_name: str) -> WorkflowKeys:
        """The checkpoint keys of ``workflow_name`` (any str, the empty one included)."""
        if not isinstance(workflow_name, str):
            raise TypeError(f"workflow_name must be a str, got {type(workflow_name).__name__}")
        check_encodable(workflow_name, "workflow_name")
        encoded = quote(workflow_name, safe="")
        base = f"{self.prefix}:{{wf:{encoded}}}"
        return WorkflowKeys(workflow_name, f"{base}:checkpoints", f"{base}:timeline")

    def thread(self, thread_id: str) -> ThreadKeys:
        """The keys of ``thread_id`` (validated)."""
        validate_thread_id(thread_id)
        return ThreadKeys(thread_id, f"{self.prefix}:{{{quote(thread_id, safe='')}}}")

    def thread_id_of(self, key: str | bytes) -> str | None:
        """The thread id of a message-list key of this prefix, or None for any other key."""
        if isinstance(key, bytes):
            key = key.decode("utf-8", errors="replace")
        head = f"{self.prefix}:{{"
        if not key.startswith(head) or not key.endswith("}"):
            return None
        encoded = key[len(head) : -1]
        if "{" in encoded or "}" in encoded:
            return None
        return unquote(encoded, errors="strict")

    @cached_property
    def thread_scan_pattern(self) -> str:
        """A SCAN ``MATCH`` pattern for the message lists of this prefix (and a few other keys)."""
        return re.sub(r"([*?\[\]\\])", r"\\\1", f"{self.prefix}:{{") + "*}"
