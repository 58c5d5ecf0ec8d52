"""Model-based test: random interleavings of every thread operation against a plain Python model.

Hypothesis' ``RuleBasedStateMachine`` appends (tool-call groups included, split across
batches or whole), retries batches, replays the newest messages and sends older ones again by
id (dedupe), trims with a ``max_messages`` chosen per operation, compacts with a scripted
summarizer, forks, exports and imports, erases by label, deletes, purges, clears, rotates
encryption keys and (1.x) saves and deletes session snapshots, on three thread ids (one of them hostile). After
every step it checks what the model says a user relies on:

* what the model gets (``list_messages`` / ``get_messages``) is exactly the model's view:
  the summary, then the kept messages after it, group-safe trimming applied, nothing lost or
  duplicated; the transcript is exactly the kept messages;
* the model never gets a tool result without its call;
* never more than ``max_messages`` after an append (checked in the rule);
* a thread the model says is gone has no key of ``ThreadKeys.owned`` left; an erasure's
  receipt is complete and no key of any erased id remains;
* the registry lists exactly the model's live threads, with their labels and counts.

The library's own guarantees are the model: group-safe trimming keeps at most
``max_messages``, cutting only where a group starts (a message answering an earlier call
continues its group); a retried batch (same message ids) is stored once; a replay of
fingerprinted messages is skipped; a thread exists while any key it owns exists.

Bounded for CI (derandomized when ``CI`` is set); ``AFRS_STATEFUL_EXAMPLES=500`` runs longer.
It found, before they were fixed: import and fork overwriting a thread that held only a session
snapshot or only its meta hash, rekey_prefix skipping session-only snapshots, and
``keep_last_messages=0`` raising IndexError.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from agent_framework_redis_store import (
    GENERATION,
    AESGCMEncryption,
    Keyspace,
    RedisChatMessageStore,
    RedisThreadRegistry,
    SummaryCompaction,
    ThreadNotFoundError,
    rekey_prefix,
)
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store.testing import EmbeddedRedis

PREFIX = "stateful"
THREAD_IDS = ("t1", "a:{b}", "[/x] é\x1b")
USERS = ("alice", "[red]bob")
LABELS: tuple[dict[str, str] | None, ...] = (None, {"user": USERS[0]}, {"user": USERS[1]})
EXAMPLES = int(os.environ.get("AFRS_STATEFUL_EXAMPLES", "0") or 0)
SETTINGS = settings(
    max_examples=EXAMPLES or 25,
    stateful_step_count=30 if EXAMPLES else 20,
    deadline=None,
    derandomize=bool(os.environ.get("CI")) and not EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
MARKER = re.compile(r"#(m\d+)#")


# -- messages: plain dicts, converted to the installed generation's messages when sent ------------


def _role(data: dict[str, Any]) -> str:
    role = data["role"]
    return str(role["value"] if isinstance(role, dict) else role)


def continues(data: dict[str, Any]) -> bool:
    """Does a cut just before this message orphan something (it answers a call it does not open)?"""
    contents = data.get("contents") or []
    opened = {c.get("call_id") for c in contents if c.get("type") == "function_call"}
    return any(c.get("type") == "function_result" and c.get("call_id") not in opened for c in contents)


def awaiting_answer(window: list[dict[str, Any]]) -> int:
    """Where the newest group starts if one of its calls has no result yet, else ``len(window)``."""
    tail = len(window)
    for position in range(len(window) - 1, -1, -1):
        tail = position
        contents = window[position].get("contents") or []
        if not contents or not all(c.get("type") == "function_result" for c in contents):
            break
    group = [c for message in window[tail:] for c in message.get("contents") or []]
    answered = {c.get("call_id") for c in group if c.get("type") == "function_result"}
    if any(c.get("type") == "function_call" and c.get("call_id") not in answered for c in group):
        return tail
    return len(window)


def signature(data: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a message in a comparison: role, id, and each content's type and text or call id."""
    parts = []
    for content in data.get("contents") or []:
        if isinstance(content, str):
            content = {"type": "text", "text": content}
        kind = content.get("type")
        if kind == "text":
            parts.append((kind, content.get("text")))
        elif kind == "function_call":
            parts.append((kind, content.get("call_id"), content.get("name")))
        elif kind == "function_result":
            parts.append((kind, content.get("call_id"), str(content.get("result"))))
        else:
            parts.append((kind,))
    return (_role(data), data.get("message_id"), tuple(parts))


def markers(data: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for content in data.get("contents") or []:
        found.extend(MARKER.findall(str(content.get("text") or content.get("arguments") or content.get("result"))))
    return found


def repair(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """docs/LONG_CONVERSATIONS.md's read rule: no result without its call before it, no call left unanswered once the
    conversation moved past its group (a pending call at the end is kept)."""
    opened: set[str] = set()
    answered: set[str] = set()
    kept_results: list[dict[str, Any]] = []
    for message in messages:
        contents = []
        for content in message["contents"]:
            if content["type"] == "function_result":
                if content["call_id"] not in opened:
                    continue
                answered.add(content["call_id"])
            contents.append(content)
        opened.update(c["call_id"] for c in message["contents"] if c["type"] == "function_call")
        kept_results.append({**message, "contents": contents})
    tail = len(kept_results)
    for position in range(len(messages) - 1, -1, -1):
        tail = position
        if not all(c["type"] == "function_result" for c in messages[position]["contents"]):
            break
    repaired = []
    for position, message in enumerate(kept_results):
        contents = [
            c
            for c in message["contents"]
            if position >= tail or c["type"] != "function_call" or c["call_id"] in answered
        ]
        if contents:
            repaired.append({**message, "contents": contents})
    return repaired


class MarkerSummarizer:
    """A chat client whose summary lists the markers of every message (and earlier summary) it was sent."""

    async def get_response(self, messages: Any, **kwargs: Any) -> Any:
        return SimpleNamespace(text=" ".join(f"#{m}#" for m in MARKER.findall(messages[-1].text)))


# -- the model ----------------------------------------------------------------------------------


@dataclass
class ThreadModel:
    messages: list[dict[str, Any]] = field(default_factory=list)
    registered: bool = False  # meta hash and registry entry (an append, import or fork made them)
    labels: dict[str, str] = field(default_factory=dict)
    session: bool = False
    summary: list[str] | None = None  # the markers the summary covers
    covered: int = 0  # how many of the kept messages (from the oldest) the summary stands for
    batches: list[list[dict[str, Any]]] = field(default_factory=list)  # applied add_messages batches
    fingerprinted: int = 0  # how many of the newest messages a replay is recognised against
    pending: bool = False  # the newest message is a call awaiting its results

    @property
    def exists(self) -> bool:
        return self.registered or self.session or bool(self.messages)

    def view(self) -> list[dict[str, Any]]:
        """What the model gets: the messages after the summary, repaired (the summary is checked apart)."""
        return repair(self.messages[self.covered :])

    def push(self, batch: list[dict[str, Any]], max_messages: int | None) -> None:
        """Append and trim group-safely: keep at most max_messages, cutting only where a group starts."""
        self.messages.extend(batch)
        self.registered = True
        length = len(self.messages)
        if max_messages and length > max_messages:
            cut = length - max_messages
            while cut < length and continues(self.messages[cut]):
                cut += 1
            del self.messages[:cut]
            self.covered = max(self.covered - cut, 0)
        self.pending = bool(self.messages) and any(c["type"] == "function_call" for c in self.messages[-1]["contents"])

    def copy_into(self, other: ThreadModel, upto: int | None = None, *, session: bool = False) -> None:
        """What import and fork make of ``other``: this thread's messages, labels and summary (import:
        its session snapshot too); nothing else. A snapshot alone makes a thread of a snapshot alone."""
        if not self.messages:
            other.__init__(session=True)  # type: ignore[misc]
            return
        copied = self.messages[:upto] if upto else list(self.messages)
        covers = min(self.covered, len(copied))
        keep_summary = self.summary is not None and (upto is None or covers < len(copied))
        other.__init__(  # type: ignore[misc]
            messages=copied,
            registered=True,
            labels=dict(self.labels),
            summary=list(self.summary) if keep_summary and self.summary is not None else None,
            covered=covers if keep_summary else 0,
            pending=bool(copied) and any(c["type"] == "function_call" for c in copied[-1]["contents"]),
            session=session and self.session,
        )


# -- the machine ----------------------------------------------------------------------------------


def _key(n: int) -> bytes:
    return bytes([n % 256]) * 32


class StoreMachine(RuleBasedStateMachine):
    """Subclassed per run with URL and ENCRYPTED set (see ``test_stateful``)."""

    URL = ""
    ENCRYPTED = False

    def __init__(self) -> None:
        super().__init__()
        with redis.Redis.from_url(self.URL) as client:
            client.flushall()
        self.loop = asyncio.new_event_loop()
        self.client = redis.asyncio.Redis.from_url(self.URL)
        self.key_number = 1
        self.encryption = AESGCMEncryption(keys={"k1": _key(1)}, current="k1") if self.ENCRYPTED else None
        self.threads = {thread_id: ThreadModel() for thread_id in THREAD_IDS}
        self.counter = 0
        self.keyspace = Keyspace(PREFIX)

    def teardown(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    # -- helpers ------------------------------------------------------------------------

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"redis_client": self.client, "key_prefix": PREFIX, "encryption": self.encryption, **extra}

    def store(self, thread_id: str, **extra: Any) -> RedisChatMessageStore:
        return RedisChatMessageStore(thread_id=thread_id, **self.options(**extra))

    def registry(self) -> RedisThreadRegistry:
        return RedisThreadRegistry(**self.options())

    def message(self, role: str, text: str | None = None, **content: Any) -> dict[str, Any]:
        self.counter += 1
        marker = f"#m{self.counter}#"
        contents = [{"type": "text", "text": f"{text} {marker}"}] if text is not None else content["contents"](marker)
        return {"role": role, "message_id": f"m{self.counter}", "contents": contents}

    def batch(self, kind: str, parallel: int = 1) -> list[dict[str, Any]]:
        """A turn's messages: 'chat', a whole tool 'turn', or a 'call' left pending (answered by 'answer')."""
        if kind == "none":
            return []
        if kind == "chat":
            return [self.message("user", "hi"), self.message("assistant", "hello")]
        if kind == "answer":
            raise AssertionError("answers are built from the pending call")
        n = self.counter + 1
        ids = [f"c{n}_{i}" for i in range(parallel)]
        call = self.message(
            "assistant",
            contents=lambda marker: [
                {"type": "function_call", "call_id": i, "name": "lookup", "arguments": {"q": marker if not k else ""}}
                for k, i in enumerate(ids)
            ],
        )
        group = [self.message("user", "look it up"), call]
        if kind == "turn":
            group += self.answer(ids, final=True)
        return group

    def answer(self, call_ids: list[str], *, final: bool) -> list[dict[str, Any]]:
        tool = self.message(
            "tool",
            contents=lambda marker: [
                {"type": "function_result", "call_id": i, "result": f"{marker if not k else ''} r"}
                for k, i in enumerate(call_ids)
            ],
        )
        return [tool, self.message("assistant", "done")] if final else [tool]

    def pending_calls(self, thread_id: str) -> list[str]:
        return [c["call_id"] for c in self.threads[thread_id].messages[-1]["contents"]]

    def reset(self, thread_id: str) -> None:
        self.threads[thread_id] = ThreadModel()

    async def assert_gone(self, thread_id: str) -> None:
        owned = self.keyspace.thread(thread_id).owned
        left = [key for key in owned if await self.client.exists(key)]
        assert not left, f"{thread_id!r} should be gone, but these keys remain: {left}"

    # -- appends ----------------------------------------------------------------------------

    @rule(
        thread_id=st.sampled_from(THREAD_IDS),
        kind=st.sampled_from(["chat", "turn", "call"]),
        parallel=st.integers(1, 2),
        max_messages=st.sampled_from([None, 1, 2, 3, 5, 8]),
        labels=st.sampled_from(LABELS),
    )
    def append(
        self, thread_id: str, kind: str, parallel: int, max_messages: int | None, labels: dict[str, str] | None
    ) -> None:
        self._append(thread_id, self.batch(kind, parallel), max_messages, labels)

    @precondition(lambda self: any(t.pending for t in self.threads.values()))
    @rule(data=st.data(), final=st.booleans(), max_messages=st.sampled_from([None, 1, 2, 3, 5, 8]))
    def answer_pending_call(self, data: st.DataObject, final: bool, max_messages: int | None) -> None:
        thread_id = data.draw(st.sampled_from([t for t in THREAD_IDS if self.threads[t].pending]))
        self._append(thread_id, self.answer(self.pending_calls(thread_id), final=final), max_messages, None)

    def _append(
        self, thread_id: str, batch: list[dict[str, Any]], max_messages: int | None, labels: dict[str, str] | None
    ) -> None:
        async def go() -> int:
            store = self.store(thread_id, max_messages=max_messages, labels=labels)
            await store.add_messages([message_from_dict(m) for m in batch])
            return await store.count()

        count = self.run(go())
        model = self.threads[thread_id]
        model.push(batch, max_messages)
        if labels is not None:
            model.labels = dict(labels)
        model.batches.append(batch)
        model.fingerprinted = 0  # another writer's append: the fingerprints no longer mark the newest
        assert max_messages is None or count <= max_messages, f"{count} messages kept with max_messages={max_messages}"

    @precondition(lambda self: any(t.batches for t in self.threads.values()))
    @rule(data=st.data(), max_messages=st.sampled_from([None, 1, 3]))
    def retry_batch(self, data: st.DataObject, max_messages: int | None) -> None:
        """A batch sent again with the same message ids (a retry after a lost reply) is not stored again."""
        thread_id = data.draw(st.sampled_from([t for t in THREAD_IDS if self.threads[t].batches]))
        batch = data.draw(st.sampled_from(self.threads[thread_id].batches))
        store = self.store(thread_id, max_messages=max_messages)
        self.run(store.add_messages([message_from_dict(m) for m in batch]))

    @rule(
        data=st.data(),
        thread_id=st.sampled_from(THREAD_IDS),
        kind=st.sampled_from(["chat", "turn", "call", "none"]),
        max_messages=st.sampled_from([None, 2, 3, 5, 8]),
    )
    def save_with_replay(self, data: st.DataObject, thread_id: str, kind: str, max_messages: int | None) -> None:
        """The 1.x provider's save (legacy: ``add_new_messages``), replaying the newest k fingerprinted messages."""
        model = self.threads[thread_id]
        replayed = data.draw(st.integers(0, min(self.fingerprinted(thread_id), 3)), label="replayed")
        new = self.batch(kind)
        if new or replayed:
            self._save(thread_id, model.messages[len(model.messages) - replayed :], new, max_messages)

    @precondition(lambda self: any(self.fingerprinted(t) >= 2 for t in THREAD_IDS))
    @rule(data=st.data(), max_messages=st.sampled_from([None, 3, 5, 8]))
    def save_an_older_message_again(self, data: st.DataObject, max_messages: int | None) -> None:
        """A fingerprinted message sent again by id from deeper in the thread than the batch reaches
        (looked up where it is stored, not among the newest the batch is compared with) is skipped."""
        thread_id = data.draw(st.sampled_from([t for t in THREAD_IDS if self.fingerprinted(t) >= 2]))
        messages = self.threads[thread_id].messages
        old = data.draw(st.integers(len(messages) - self.fingerprinted(thread_id), len(messages) - 2), label="old")
        self._save(thread_id, [messages[old]], self.batch("chat"), max_messages)

    def fingerprinted(self, thread_id: str) -> int:
        """How many of the thread's newest messages a save recognises as already stored."""
        model = self.threads[thread_id]
        return min(model.fingerprinted, len(model.messages))

    def _save(
        self, thread_id: str, repeats: list[dict[str, Any]], new: list[dict[str, Any]], max_messages: int | None
    ) -> None:
        """Save ``repeats`` (already stored) then ``new`` as the 1.x provider does; only ``new`` may be stored."""

        async def go() -> int:
            messages = [message_from_dict(m) for m in (*repeats, *new)]
            if GENERATION == "current":
                from agent_framework_redis_store import RedisChatHistoryProvider

                provider = RedisChatHistoryProvider(**self.options(max_messages=max_messages))
                await provider.save_messages(thread_id, messages)
            else:
                await self.store(thread_id, max_messages=max_messages).add_new_messages(messages)
            return await self.store(thread_id).count()

        count = self.run(go())
        if new:
            model = self.threads[thread_id]
            model.push(new, max_messages)
            model.fingerprinted = min(model.fingerprinted + len(new), min(256, max_messages or 256))
            # Trimming comes with an append: a save that stores nothing leaves the thread as it was.
            assert max_messages is None or count <= max_messages

    # -- summaries -----------------------------------------------------------------------------

    @rule(thread_id=st.sampled_from(THREAD_IDS), keep_last=st.integers(0, 3))
    def compact(self, thread_id: str, keep_last: int) -> None:
        try:
            policy = SummaryCompaction(
                MarkerSummarizer(), trigger_messages=50, keep_last_messages=keep_last, background=False
            )
        except ValueError:
            assert keep_last == 0  # rejecting 0 at construction is one of the two fixes the issue allows
            return
        result = self.run(self.store(thread_id, compaction=policy).compact(force=True))
        model = self.threads[thread_id]
        window = model.messages[model.covered :]
        # A newest call still awaiting its result stays unsummarized, whatever keep_last says.
        cut = min(len(window) - keep_last, awaiting_answer(window))
        while 0 < cut < len(window) and continues(window[cut]):
            cut -= 1
        if cut <= 0:
            assert not result.compacted, result
            return
        assert result.compacted, result
        assert result.summarized == cut, (result, cut)
        model.summary = (model.summary or []) + [m for message in window[:cut] for m in markers(message)]
        model.covered += cut

    # -- thread operations -----------------------------------------------------------------------

    @rule(thread_id=st.sampled_from(THREAD_IDS))
    def clear(self, thread_id: str) -> None:
        self.run(self.store(thread_id).clear())
        self.reset(thread_id)
        self.run(self.assert_gone(thread_id))

    @rule(
        source=st.sampled_from(THREAD_IDS), destination=st.sampled_from(THREAD_IDS), upto=st.sampled_from([None, 1, 2])
    )
    def fork(self, source: str, destination: str, upto: int | None) -> None:
        src, dst = self.threads[source], self.threads[destination]
        if not src.messages:
            with pytest.raises(ThreadNotFoundError):
                self.run(self.registry().fork(source, destination, upto=upto))
        elif dst.exists:
            with pytest.raises(ValueError, match="already exists"):
                self.run(self.registry().fork(source, destination, upto=upto))
        else:
            assert self.run(self.registry().fork(source, destination, upto=upto)) == destination
            src.copy_into(dst, upto)

    @rule(source=st.sampled_from(THREAD_IDS), destination=st.sampled_from(THREAD_IDS), replace_existing=st.booleans())
    def export_import(self, source: str, destination: str, replace_existing: bool) -> None:
        src, dst = self.threads[source], self.threads[destination]
        registry = self.registry()
        if not src.messages and not src.session:
            with pytest.raises(ThreadNotFoundError):
                self.run(registry.export_thread(source))
            return
        record = self.run(registry.export_thread(source))
        assert [signature(m) for m in record.messages] == [signature(m) for m in src.messages]
        assert (record.session is not None) == src.session
        written = self.run(registry.import_thread(replace(record, thread_id=destination), replace=replace_existing))
        if dst.exists and not replace_existing:
            assert written is False
        else:
            assert written is True
            src.copy_into(dst, session=True)

    @rule(user=st.sampled_from(USERS))
    def erase(self, user: str) -> None:
        receipt = self.run(self.registry().erase(labels={"user": user}))
        expected = {t for t, m in self.threads.items() if m.registered and m.labels.get("user") == user}
        assert receipt.complete
        assert set(receipt.thread_ids) == expected, receipt
        for thread_id in receipt.thread_ids:
            self.run(self.assert_gone(thread_id))
            self.reset(thread_id)

    @rule(thread_id=st.sampled_from(THREAD_IDS))
    def delete(self, thread_id: str) -> None:
        deleted = self.run(self.registry().delete([thread_id]))
        model = self.threads[thread_id]
        assert deleted == int(model.exists), (deleted, model)
        self.reset(thread_id)
        self.run(self.assert_gone(thread_id))

    @rule()
    def purge(self) -> None:
        result = self.run(self.registry().purge(older_than=0))
        live = [t for t, m in self.threads.items() if m.registered]
        assert result.purged == len(live), (result, live)
        for thread_id in live:
            self.reset(thread_id)
            self.run(self.assert_gone(thread_id))

    @precondition(lambda self: self.ENCRYPTED)
    @rule()
    def rotate_key(self) -> None:
        """A new current key, every thread re-encrypted, then the old key dropped (docs/SECURITY.md's rotation)."""
        assert self.encryption is not None
        old, new = f"k{self.key_number}", f"k{self.key_number + 1}"
        both = AESGCMEncryption(keys={new: _key(self.key_number + 1), old: _key(self.key_number)}, current=new)
        self.run(rekey_prefix(self.client, both, key_prefix=PREFIX))
        self.key_number += 1
        self.encryption = AESGCMEncryption(keys={new: _key(self.key_number)}, current=new)
        for model in self.threads.values():
            # Fingerprints are keyed by the current key: once the old one is dropped, replays of
            # messages saved before the rotation are not recognised (docs/SECURITY.md, Encryption at rest).
            model.fingerprinted = 0

    # -- 1.x session snapshots -------------------------------------------------------------------

    @precondition(lambda self: GENERATION == "current")
    @rule(thread_id=st.sampled_from(THREAD_IDS))
    def session_set(self, thread_id: str) -> None:
        from agent_framework import AgentSession

        from agent_framework_redis_store import RedisSessionStore

        sessions = RedisSessionStore(**self.options())
        self.run(sessions.set(thread_id, AgentSession(session_id=thread_id)))
        self.threads[thread_id].session = True

    @precondition(lambda self: GENERATION == "current")
    @rule(thread_id=st.sampled_from(THREAD_IDS))
    def session_delete(self, thread_id: str) -> None:
        from agent_framework_redis_store import RedisSessionStore

        self.run(RedisSessionStore(**self.options()).delete(thread_id))
        self.threads[thread_id].session = False

    # -- invariants ----------------------------------------------------------------------------------

    @invariant()
    def threads_match_the_model(self) -> None:
        self.run(self._check_threads())

    async def _check_threads(self) -> None:
        for thread_id, model in self.threads.items():
            store = self.store(thread_id, registry=False)
            transcript = [m.to_dict(exclude_none=True) for m in await store.transcript()]
            assert [signature(m) for m in transcript] == [signature(m) for m in model.messages], (
                f"transcript of {thread_id!r}"
            )
            if GENERATION == "current":
                from agent_framework_redis_store import RedisChatHistoryProvider

                provider = RedisChatHistoryProvider(**self.options(registry=False))
                loaded = await provider.get_messages(thread_id)
            else:
                loaded = await store.list_messages()
            seen = [m.to_dict(exclude_none=True) for m in loaded]
            if model.summary is not None:
                assert seen, f"{thread_id!r}: the summary is missing"
                summary, *seen = seen
                assert MARKER.findall(summary["contents"][0]["text"]) == model.summary, f"summary of {thread_id!r}"
            assert [signature(m) for m in seen] == [signature(m) for m in model.view()], (
                f"what the model gets from {thread_id!r}"
            )
            called: set[str] = set()
            for message in seen:
                for content in message.get("contents") or []:
                    if content.get("type") == "function_call":
                        called.add(content["call_id"])
                    elif content.get("type") == "function_result":
                        assert content["call_id"] in called, f"{thread_id!r}: result {content['call_id']} without call"
            owned = self.keyspace.thread(thread_id).owned
            present = await self.client.exists(*owned)
            assert bool(present) == model.exists, f"{thread_id!r}: {present} owned keys, model {model}"
            if GENERATION == "current":
                from agent_framework_redis_store import RedisSessionStore

                snapshot = await RedisSessionStore(**self.options()).get(thread_id)
                assert (snapshot is not None) == model.session, f"session of {thread_id!r}"

    @invariant()
    def registry_lists_the_live_threads(self) -> None:
        async def listed() -> dict[str, tuple[dict[str, str], int]]:
            page = await self.registry().list_threads(limit=50)
            return {s.thread_id: (s.labels, s.message_count) for s in page.threads}

        expected = {t: (m.labels, len(m.messages)) for t, m in self.threads.items() if m.registered}
        assert self.run(listed()) == expected


@pytest.fixture(scope="module")
def stateful_server() -> Iterator[EmbeddedRedis]:
    """A private redis-server for this module (each example starts with FLUSHALL)."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plaintext", "encrypted"])
def test_stateful(stateful_server: EmbeddedRedis, encrypted: bool) -> None:
    machine = type("StoreMachine", (StoreMachine,), {"URL": stateful_server.url, "ENCRYPTED": encrypted})
    run_state_machine_as_test(machine, settings=SETTINGS)
