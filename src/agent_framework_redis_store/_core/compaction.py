"""``SummaryCompaction``: older messages summarized by a chat client, the summary kept in Redis.

When the messages after a thread's summary exceed a trigger, all but the newest
``keep_last_messages`` (cut where a tool-call group starts) are summarized together with
the previous summary into one new summary, stored with the boundary it covers in one
atomic step that succeeds only if the boundary has not moved meanwhile (see
``lua.COMMIT_SUMMARY``). The full transcript stays in Redis; the model gets the summary and
the messages after the boundary, at most ``max_unsummarized_messages`` (and
``max_unsummarized_tokens``) of them when the store sets no context window of its own.

By default this happens off the critical path: a turn saves and returns, and the summary
is made in a background task (at most ``max_concurrency`` per ``SummaryCompaction``, one
per thread). A summarizer that fails or times out leaves the thread as it was, logs a
warning and is tried again after the next turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .codec import message_from_dict
from .groups import transcript_line
from .keyspace import ThreadKeys
from .telemetry import traced

__all__ = ["DEFAULT_INSTRUCTIONS", "SUMMARY_PROPERTY", "CompactionResult", "SummaryCompaction"]

logger = logging.getLogger("agent_framework_redis_store")

#: The additional property that marks a summary message (its value names the boundary).
SUMMARY_PROPERTY = "agent_framework_redis_store.summary"
SUMMARY_PREFIX = "Summary of the earlier conversation: "

DEFAULT_INSTRUCTIONS = (
    "You maintain the memory of a conversation between a user and an assistant. Write a concise summary "
    "(at most ten sentences) of the conversation below, incorporating the previous summary if there is one. "
    "Keep every name, fact, preference, decision, number and open task a later turn may need, from both "
    "the user and the assistant. Do not add anything that is not in the conversation, and do not comment "
    "on it. Answer with the summary only."
)


class _Thread(Protocol):
    """What a compaction needs of a thread (``ThreadStorage``)."""

    @property
    def thread_id(self) -> str: ...

    keys: ThreadKeys

    async def compact(self, compaction: SummaryCompaction) -> CompactionResult: ...


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction did: ``compacted`` says whether a new summary was stored."""

    compacted: bool
    reason: str
    """Why not, or ``"compacted"``."""
    summarized: int = 0
    """Messages the new summary covers that the previous one did not."""
    boundary: int = 0
    """The absolute position of the first message after the summary (messages ever written before it)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "compacted": self.compacted,
            "reason": self.reason,
            "summarized": self.summarized,
            "boundary": self.boundary,
        }


class SummaryCompaction:
    """Summarize the older messages of long threads into a summary persisted in Redis.

    Args:
        client: A chat client of the running framework generation (``get_response``).

    Keyword Args:
        trigger_messages: Compact when more than this many messages follow the summary.
        trigger_tokens: Compact when the messages after the summary exceed this many tokens.
        keep_last_messages: How many of the newest messages stay verbatim (fewer to cut at a group
            start). 0 summarizes every message (the model then gets the summary and what follows
            it), except a newest tool call still awaiting its result or approval.
        instructions: The summarizer's system prompt (default ``DEFAULT_INSTRUCTIONS``).
        timeout: Seconds one summarizer call may take before it counts as failed.
        max_concurrency: Background compactions running at once, across all threads.
        background: Compact in a background task after a save (default); False leaves it to
            ``compact()``.

    A ceiling while a summary is late: a store with ``compaction=`` and no context window of
    its own (neither ``context_messages`` nor ``context_tokens``) hands the model at most
    ``max_unsummarized_messages`` (twice ``trigger_messages``) of the messages after the
    summary, and at most ``max_unsummarized_tokens`` (twice ``trigger_tokens``) of their
    tokens, the newest, cut where a tool-call group starts. A summarizer slower than the
    conversation (or failing) then costs the model the oldest unsummarized messages until
    the summary lands, never an ever-growing request; the transcript keeps them, and the
    next summary covers them.
    """

    def __init__(
        self,
        client: Any,
        *,
        trigger_messages: int | None = None,
        trigger_tokens: int | None = None,
        keep_last_messages: int = 10,
        instructions: str | None = None,
        timeout: float = 60.0,
        max_concurrency: int = 4,
        background: bool = True,
    ) -> None:
        if not callable(getattr(client, "get_response", None)):
            raise TypeError(f"client must be a chat client with get_response(), got {type(client).__name__}")
        for name, value in (("trigger_messages", trigger_messages), ("trigger_tokens", trigger_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        if trigger_messages is None and trigger_tokens is None:
            raise ValueError("give trigger_messages or trigger_tokens (or both): when to compact")
        if isinstance(keep_last_messages, bool) or not isinstance(keep_last_messages, int) or keep_last_messages < 0:
            raise ValueError(f"keep_last_messages must be a non-negative int, got {keep_last_messages!r}")
        if trigger_messages is not None and keep_last_messages >= trigger_messages:
            raise ValueError(
                f"keep_last_messages ({keep_last_messages}) must be less than trigger_messages ({trigger_messages})"
            )
        if instructions is not None and (not isinstance(instructions, str) or not instructions.strip()):
            raise ValueError("instructions must be a non-empty str or None")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a positive int, got {max_concurrency!r}")
        self.client = client
        self.trigger_messages = trigger_messages
        self.trigger_tokens = trigger_tokens
        self.keep_last_messages = keep_last_messages
        self.instructions = instructions or DEFAULT_INSTRUCTIONS
        self.timeout = float(timeout)
        self.background = bool(background)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"SummaryCompaction(client={type(self.client).__name__}, trigger_messages={self.trigger_messages!r}, "
            f"trigger_tokens={self.trigger_tokens!r}, keep_last_messages={self.keep_last_messages!r})"
        )

    @property
    def max_unsummarized_messages(self) -> int | None:
        """At most this many messages after the summary reach the model when the store sets no window."""
        return None if self.trigger_messages is None else 2 * self.trigger_messages

    @property
    def max_unsummarized_tokens(self) -> int | None:
        """At most this many tokens after the summary reach the model when the store sets no window."""
        return None if self.trigger_tokens is None else 2 * self.trigger_tokens

    def due(self, messages: int, tokens: int | None) -> bool:
        """True when ``messages`` (with ``tokens``, if known) after the summary exceed a trigger."""
        if self.trigger_messages is not None and messages > self.trigger_messages:
            return True
        return self.trigger_tokens is not None and tokens is not None and tokens > self.trigger_tokens

    @traced("summarize")
    async def summarize(self, previous: str | None, messages: Sequence[dict[str, Any]]) -> str:
        """One summarizer call: the previous summary and ``messages`` (stored dicts) in, the new summary out."""
        lines = "\n".join(transcript_line(message) for message in messages)
        prompt = f"Previous summary:\n{previous}\n\nConversation since:\n{lines}" if previous else lines
        request = [
            message_from_dict({"role": "system", "contents": [{"type": "text", "text": self.instructions}]}),
            message_from_dict({"role": "user", "contents": [{"type": "text", "text": prompt}]}),
        ]
        async with asyncio.timeout(self.timeout):
            response = await self.client.get_response(request)
        text = str(getattr(response, "text", "") or "").strip()
        if not text:
            raise ValueError("the summarizer returned no text")
        return text

    def summary_message(self, text: str, boundary: int) -> dict[str, Any]:
        """The message dict that stands for every message before ``boundary``."""
        return {
            "role": "assistant",
            "contents": [{"type": "text", "text": SUMMARY_PREFIX + text}],
            "message_id": f"summary-{boundary}",
            "additional_properties": {SUMMARY_PROPERTY: {"boundary": boundary}},
        }

    def schedule(self, thread: _Thread, tasks: set[asyncio.Task[None]]) -> None:
        """Compact ``thread`` in the background (unless it is already being compacted here).

        The task is added to ``tasks`` (its owner's, which waits for it in ``aclose``).
        """
        key = thread.keys.messages
        if key in self._running:
            # One compaction per thread at a time; the running one checks again when it is done,
            # since it may have read the thread before this save.
            self._again.add(key)
            return
        task = asyncio.get_running_loop().create_task(self._compact_in_background(thread, key))
        self._running[key] = task
        tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._running.pop(key, None)
            tasks.discard(finished)

        task.add_done_callback(done)

    async def _compact_in_background(self, thread: _Thread, key: str) -> None:
        async with self._slots:
            while True:
                self._again.discard(key)
                try:
                    await thread.compact(self)
                except Exception as err:
                    # Never the message text or the client's request: the type and a short reason.
                    logger.warning(
                        "summarizing thread %r failed (%s: %s); it stays as it was and is tried again after "
                        "the next turn",
                        thread.thread_id,
                        type(err).__name__,
                        str(err)[:200],
                    )
                    return
                if key not in self._again:
                    return


def is_summary(data: dict[str, Any]) -> bool:
    """True for a message dict that is a summary this package made."""
    properties = data.get("additional_properties")
    return isinstance(properties, dict) and SUMMARY_PROPERTY in properties
