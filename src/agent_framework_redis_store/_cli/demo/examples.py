"""The seed notebook's five examples, a sixth on long conversations and a seventh on a workflow that
waits for a person, written once for both generations.

Each example talks through a ``Chats`` adapter (``demo_legacy`` or ``demo_current``), prints
its transcript and what it left in Redis, checks its own claim and cleans up its keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import uuid4

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from agent_framework_redis_store import GENERATION, RedisChatMessageStore, RedisCheckpointStorage, SummaryCompaction

from ..console import shown
from .workflow import Paused, refund_workflow, resume_with_answer

__all__ = ["EXAMPLES", "Chat", "Chats", "Claim", "DemoRun", "ExampleResult", "run_examples"]


class Chat(Protocol):
    """One agent on one conversation whose messages live in Redis."""

    @property
    def store(self) -> RedisChatMessageStore: ...

    async def ask(self, text: str) -> str: ...

    async def settle(self) -> None: ...

    async def suspend(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class Chats(Protocol):
    """Opens conversations with one generation's API."""

    api: str

    client: Any

    redis_url: str

    key_prefix: str

    def open(
        self,
        *,
        name: str,
        instructions: str,
        thread_id: str | None = None,
        max_messages: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Chat: ...

    def open_from_factory(
        self, *, name: str, instructions: str, thread_id: Callable[[], str], max_messages: int | None = None
    ) -> Chat: ...

    async def restore(
        self, state: dict[str, Any], *, name: str, instructions: str, max_messages: int | None = None
    ) -> Chat: ...


@dataclass
class Claim:
    """One thing an example promises, and whether it held."""

    text: str
    ok: bool
    detail: str = ""


@dataclass
class ExampleResult:
    """The claims one example checked."""

    title: str
    claims: list[Claim] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.claims) and all(c.ok for c in self.claims)


@dataclass
class DemoRun:
    """What the examples need: the conversations, the console, and how to restart Redis."""

    chats: Chats
    console: Console
    offline: bool
    restart_redis: Callable[[], Awaitable[str | None]]
    results: list[ExampleResult] = field(default_factory=list)

    # -- transcript ------------------------------------------------------------------------

    def say(self, markup: str) -> None:
        self.console.print(markup, highlight=False)

    async def turn(self, chat: Chat, text: str) -> str:
        """One user turn, printed with the agent's answer."""
        self.console.print(Text.assemble(("User:  ", "bold cyan"), shown(text, lines=True)))
        answer = await chat.ask(text)
        self.console.print(Text.assemble(("Agent: ", "bold green"), shown(answer, lines=True)))
        return answer

    def check(self, result: ExampleResult, text: str, ok: bool, detail: str = "") -> None:
        """Record a claim and print whether it held."""
        result.claims.append(Claim(text, ok, detail))
        mark = "[bold green]✓[/]" if ok else "[bold red]✗ FAILED:[/]"
        suffix = f" [dim]({escape(detail)})[/]" if detail else ""
        self.say(f"{mark} {escape(text)}{suffix}")

    async def check_count(self, result: ExampleResult, chat: Chat, text: str, expected: int) -> None:
        """Check that the chat's thread holds ``expected`` messages in Redis."""
        count = await chat.store.count()
        self.check(result, text, count == expected, f"{count} stored")

    def recalls(self, result: ExampleResult, answer: str, words: Sequence[str], what: str) -> None:
        """With the offline model, check that an answer repeats facts from earlier turns."""
        if self.offline:
            missing = [w for w in words if w.lower() not in answer.lower()]
            self.check(result, f"The answer recalls {what}", not missing, f"missing: {missing}" if missing else "")

    async def show_stored(self, *stores: RedisChatMessageStore) -> None:
        """Print each thread's Redis list: key, length, expiry and entries."""
        for store in stores:
            messages = await store.list_messages()
            ttl_ms = await store.redis_client.pttl(store.redis_key)
            expiry = "no expiry" if ttl_ms < 0 else f"expires in {ttl_ms / 1000:.0f} s"
            table = Table(
                title=f"Stored in Redis: LIST {store.redis_key} ({len(messages)} entries, {expiry})",
                title_justify="left",
                show_edge=False,
            )
            table.add_column("#", justify="right", style="dim")
            table.add_column("role")
            table.add_column("text", overflow="fold")
            for index, message in enumerate(messages):
                role = str(getattr(message.role, "value", message.role))
                text = message.text or ""
                shortened = text if len(text) <= 100 else text[:97] + "..."
                table.add_row(str(index), Text(shown(role)), Text(shown(shortened)))  # the model's words: no markup
            self.console.print(table)

    async def clean_up(self, *chats: Chat) -> None:
        """Delete the example's threads from Redis and close its connections."""
        for chat in chats:
            await chat.settle()  # a background summary must not write after the keys are gone
            await chat.store.clear()
            await chat.aclose()
        self.say("[dim]Cleaned up: the example's keys are deleted.[/]")


# -- the examples ------------------------------------------------------------------------


async def basic_store(run: DemoRun, result: ExampleResult) -> None:
    chat = run.chats.open(
        name="RedisBot", instructions="You are a helpful assistant that remembers our conversation using Redis."
    )
    try:
        run.say(f"Created a store with the auto-generated thread id [bold]{escape(chat.store.thread_id)}[/]")
        await run.turn(chat, "Hello! My name is Alice and I love pizza.")
        answer = await run.turn(chat, "What do you remember about me?")
        await run.check_count(result, chat, "Both turns are stored in Redis (2 user + 2 agent messages)", 4)
        run.recalls(result, answer, ["Alice", "pizza"], "Alice and pizza from the first turn")
        await run.show_stored(chat.store)
    finally:
        await run.clean_up(chat)


async def user_sessions(run: DemoRun, result: ExampleResult) -> None:
    user_id = "alice_123"
    session_id = f"session_{uuid4()}"
    chat = run.chats.open_from_factory(
        name="SessionBot",
        instructions="You are a helpful assistant. Keep track of user preferences.",
        thread_id=lambda: f"user_{user_id}_{session_id}",
        max_messages=10,
    )
    try:
        thread_id = chat.store.thread_id
        run.say(f"Started a session for user {user_id}: thread id [bold]{escape(thread_id)}[/] (max_messages=10)")
        queries = [
            "Hi, I'm Alice and I prefer vegetarian food.",
            "What restaurants would you recommend?",
            "I also love Italian cuisine.",
            "Can you remember my food preferences?",
        ]
        answer = ""
        for query in queries:
            answer = await run.turn(chat, query)
        run.check(result, "The factory made the user's own thread", thread_id == f"user_{user_id}_{session_id}")
        await run.check_count(result, chat, "The session holds all 4 turns, within max_messages=10", 8)
        run.recalls(result, answer, ["vegetarian", "Italian"], "both food preferences")
        await run.show_stored(chat.store)
    finally:
        await run.clean_up(chat)


async def persistence_across_restarts(run: DemoRun, result: ExampleResult) -> None:
    conversation_id = "persistent_chat_001"
    name, instructions = "PersistentBot", "You are a helpful assistant. Remember our conversation history."
    run.say("[bold]--- Phase 1: starting the conversation ---[/]")
    first = run.chats.open(name=name, instructions=instructions, thread_id=conversation_id)
    try:
        await run.turn(first, "Hello! I'm working on a Python project about machine learning.")
        await run.turn(first, "I'm specifically interested in neural networks.")
        before = await first.store.count()
    finally:
        await first.aclose()
    run.say(f"Stored {before} messages; the app closes its connections (app shutdown).")

    restarted = await run.restart_redis()
    if restarted is not None:
        run.say(escape(restarted))
    else:
        run.say("[dim]This Redis is not the demo's own, so only the app restarts, not the server.[/]")

    run.say("[bold]--- Phase 2: the restarted app resumes the conversation ---[/]")
    second = run.chats.open(name=name, instructions=instructions, thread_id=conversation_id)
    try:
        found = await second.store.count()
        run.check(
            result,
            f"The restarted app finds its conversation '{conversation_id}'",
            found == before == 4,
            f"{found} of {before} messages",
        )
        answer = await run.turn(second, "What was I working on before?")
        run.recalls(result, answer, ["machine learning"], "the project from before the restart")
        await run.turn(second, "Can you suggest some Python libraries for neural networks?")
        await run.check_count(result, second, "The conversation continues on the same thread", 8)
        await run.show_stored(second.store)
    finally:
        await run.clean_up(second)


async def thread_serialization(run: DemoRun, result: ExampleResult) -> None:
    name, instructions = "SerializationBot", "You are a helpful assistant."
    original = run.chats.open(name=name, instructions=instructions, thread_id="serialization_test", max_messages=50)
    try:
        await run.turn(original, "Hello! I'm testing serialization.")
        state = await original.suspend()
        thread_id = original.store.thread_id
    finally:
        await original.aclose()
    dumped = json.dumps(state)
    run.say(f"Serialized state ({len(dumped)} bytes of JSON):")
    run.console.print_json(dumped)
    run.check(
        result,
        "The state holds thread metadata only, no message text",
        "testing serialization" not in dumped and thread_id in dumped,
    )

    run.say("[bold]--- Restoring the thread from its state ---[/]")
    restored = await run.chats.restore(json.loads(dumped), name=name, instructions=instructions, max_messages=50)
    try:
        run.check(result, "The restored thread is the same Redis thread", restored.store.thread_id == thread_id)
        answer = await run.turn(restored, "Do you remember what I said about testing?")
        run.recalls(result, answer, ["serialization"], "what was said before the thread was suspended")
        await run.check_count(result, restored, "The resumed thread holds both turns", 4)
        await run.show_stored(restored.store)
    finally:
        await run.clean_up(restored)


async def message_limits(run: DemoRun, result: ExampleResult) -> None:
    chat = run.chats.open(
        name="LimitBot",
        instructions="You are a helpful assistant with limited memory.",
        thread_id="limits_test",
        max_messages=3,
    )
    try:
        counts = []
        for query in [
            "Message 1: Hello!",
            "Message 2: How are you?",
            "Message 3: What's the weather?",
            "Message 4: Tell me a joke.",
            "Message 5: This should trigger trimming.",
        ]:
            await run.turn(chat, query)
            stored = await chat.store.list_messages()
            counts.append(len(stored))
            oldest = (stored[0].text or "")[:40] if stored else ""
            run.say(f"[dim]   {len(stored)} messages in the store; oldest: {escape(oldest)!r}[/]")
        run.say("The model is sent only what the store kept, so it never sees more than the newest 3 messages.")
        run.check(
            result,
            "The trimmed thread never holds more than max_messages=3",
            max(counts) <= 3 and counts[-1] == 3,
            f"counts after each turn: {counts}",
        )
        await run.show_stored(chat.store)
    finally:
        await run.clean_up(chat)


async def long_conversations(run: DemoRun, result: ExampleResult) -> None:
    window, keep, trigger = 6, 4, 8
    compaction = SummaryCompaction(run.chats.client, trigger_messages=trigger, keep_last_messages=keep)
    chat = run.chats.open(
        name="LongMemoryBot",
        instructions="You are a helpful assistant.",
        thread_id="long_conversation",
        options={"context_messages": window, "compaction": compaction},
    )
    try:
        run.say(
            f"The model gets at most the newest {window} messages; when more than {trigger} follow the summary, "
            f"the same model summarizes all but the newest {keep} in the background, and the summary is stored "
            "in Redis."
        )
        turns = [
            "Hi! My name is Bob and I love sushi.",
            "How are you?",
            "Tell me a joke.",
            "What's the weather like?",
            "Tell me another joke.",
            "How are you today?",
            "What's the weather now?",
        ]
        for text in turns:
            await run.turn(chat, text)
            await chat.settle()  # the demo waits for the background summary, so its output reads in order
        summary = await chat.store.summary()
        run.check(result, "A summary of the older turns is stored in Redis", summary is not None)
        if summary is not None:
            run.say(f"[dim]   summary: {escape((summary.text or '')[:160])}[/]")
        seen = await chat.store.list_messages()
        run.check(
            result,
            f"The model is sent the summary and at most {window} messages",
            len(seen) <= window + 1 and summary is not None and seen[0].text == summary.text,
            f"{len(seen)} messages",
        )
        answer = await run.turn(chat, "What do you remember about me?")
        run.recalls(result, answer, ["Bob", "sushi"], "the first turn, through the summary")
        transcript = await chat.store.transcript()
        run.check(
            result,
            "The transcript in Redis still holds every turn",
            len(transcript) == 2 * (len(turns) + 1),
            f"{len(transcript)} messages",
        )
    finally:
        await run.clean_up(chat)


async def _first_process(run: DemoRun, request: str) -> Paused:
    """Run the workflow in a process of its own (``demo/pause.py``) until it asks for approval; its report."""
    order = {
        "redis_url": run.chats.redis_url,
        "key_prefix": run.chats.key_prefix,
        "offline": run.offline,
        "request": request,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent_framework_redis_store._cli.demo.pause",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await process.communicate(json.dumps(order).encode())
    except BaseException:  # cancelled (Ctrl-C): the child must not run on after the demo
        if process.returncode is None:
            process.kill()
            await asyncio.shield(process.wait())
        raise
    if process.returncode != 0:
        raise RuntimeError(f"the first process failed (exit code {process.returncode}): {err.decode()[-2000:]}")
    return Paused(**json.loads(out.decode().strip().splitlines()[-1]))


async def _show_checkpoints(run: DemoRun, storage: RedisCheckpointStorage, workflow_name: str) -> None:
    """Print the workflow's checkpoints in Redis, newest first."""
    keys = storage.workflow_keys(workflow_name)
    run.say(f"Stored in Redis: ZSET {escape(keys.timeline)} (the order), HASH {escape(keys.checkpoints)} (the bodies)")
    table = Table(title="The workflow's checkpoints, newest first", title_justify="left", show_edge=False)
    table.add_column("checkpoint id")
    table.add_column("saved at")
    table.add_column("waiting for", overflow="fold")
    async for checkpoint in storage.iter_checkpoints(workflow_name):
        waiting = len(checkpoint.pending_request_info_events)
        table.add_row(
            Text(shown(checkpoint.checkpoint_id)),
            Text(shown(str(checkpoint.timestamp))),
            f"{waiting} request(s)" if waiting else "",
        )
    run.console.print(table)


async def workflow_waits_for_a_person(run: DemoRun, result: ExampleResult) -> None:
    request = "Draft a refund of 40 EUR for order 1017 (the kettle arrived broken)."
    run.say("[bold]--- Phase 1: a process runs the workflow until it asks a person for approval ---[/]")
    run.console.print(Text.assemble(("Order: ", "bold cyan"), shown(request)))
    try:
        paused = await _first_process(run, request)
    except RuntimeError as err:
        run.check(result, "The first process runs the workflow until it asks for approval", False, str(err))
        return
    run.console.print(Text.assemble(("Draft: ", "bold green"), shown(paused.draft, lines=True)))
    run.say(
        f"Process {paused.pid} saved {paused.checkpoints} checkpoints; its workflow waits for approval "
        f"(request {escape(paused.request_id)}), and the process has exited."
    )
    restarted = await run.restart_redis()
    if restarted is not None:
        run.say(escape(restarted))
    else:
        run.say("[dim]This Redis is not the demo's own, so only the app restarts, not the server.[/]")

    run.say("[bold]--- Phase 2: another process finds the waiting workflow and a person approves ---[/]")
    if GENERATION == "legacy":
        run.say(
            "[dim]The legacy framework files checkpoints under the workflow instance's random id "
            "(workflow.id), not its name: the first process reported that id, and the app keeps it with the order.[/]"
        )
    async with RedisCheckpointStorage(run.chats.redis_url, key_prefix=run.chats.key_prefix) as storage:
        try:
            latest = await storage.get_latest(workflow_name=paused.workflow_name)
            waiting = list(latest.pending_request_info_events) if latest is not None else []
            by = "name" if GENERATION == "current" else "id"
            run.check(
                result,
                f"get_latest finds the workflow by its {by}, waiting for the approval",
                waiting == [paused.request_id],
                f"{paused.workflow_name}: " + (f"checkpoint {latest.checkpoint_id}" if latest is not None else "none"),
            )
            if latest is None:
                return
            await _show_checkpoints(run, storage, paused.workflow_name)
            workflow, drafter = refund_workflow(run.chats.client, storage)
            run.console.print(Text.assemble(("Person: ", "bold cyan"), "Approved"))
            outputs = await resume_with_answer(workflow, storage, latest.checkpoint_id, {paused.request_id: "Approved"})
            for output in outputs:
                run.console.print(Text.assemble(("Result: ", "bold green"), shown(output, lines=True)))
            run.check(
                result,
                "The workflow finished from the checkpoint with the draft made before the restart",
                outputs == [f"Approved: {paused.draft}"],
            )
            run.check(
                result,
                "Nothing was drafted again: this process's drafter never ran",
                drafter.drafts == 0,
                f"first process {paused.pid}, this one {os.getpid()}",
            )
        finally:
            for checkpoint_id in await storage.list_checkpoint_ids(workflow_name=paused.workflow_name):
                await storage.delete(checkpoint_id)
    run.say("[dim]Cleaned up: the workflow's checkpoints are deleted.[/]")


EXAMPLES: list[tuple[str, Callable[[DemoRun, ExampleResult], Awaitable[None]]]] = [
    ("Basic Redis Chat Message Store", basic_store),
    ("User Session Management", user_sessions),
    ("Conversation Persistence Across Application Restarts", persistence_across_restarts),
    ("Thread Serialization with Redis", thread_serialization),
    ("Message Limits and Automatic Trimming", message_limits),
    ("Long Conversations: windows and summaries kept in Redis", long_conversations),
    ("A workflow that waits for a person", workflow_waits_for_a_person),
]


async def run_examples(run: DemoRun) -> list[ExampleResult]:
    """Run the examples in order; every one runs even if an earlier claim failed."""
    for number, (title, example) in enumerate(EXAMPLES, 1):
        run.console.print()
        run.console.print(Rule(f"[bold]Example {number}: {title}[/]", align="left"))
        result = ExampleResult(title)
        run.results.append(result)
        await example(run, result)
    return run.results
