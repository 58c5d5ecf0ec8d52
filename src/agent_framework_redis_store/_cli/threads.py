"""``redis-chat-store threads ...`` and ``redis-chat-store stats``: operate the thread registry.

A client of the package's public API only (``RedisThreadRegistry``, ``RedisChatMessageStore``).
Every read command takes ``--json`` for output a script can parse; errors are one line on
stderr and exit status 1 (2 for a malformed command line).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

import typer
from redis.exceptions import ClusterCrossSlotError, MovedError, RedisClusterException, RedisError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from agent_framework_redis_store import (
    AESGCMEncryption,
    PurgeResult,
    RedisChatMessageStore,
    RedisStoreError,
    RedisThreadRegistry,
    RekeyProgress,
    SummaryCompaction,
    ThreadInfo,
    ThreadRecord,
    ThreadRecordError,
    ThreadSummary,
    rekey_prefix,
)

from .confirm import DryRun, Yes, ask, must_ask
from .console import emit_json, err, fail, out, say, shown, table_or_records
from .help import HelpGroup
from .interrupt import EXIT_STATUS, Interrupted, answering, run_until_interrupted
from .target import Cluster, KeyPrefix, RedisUrl, Target, resolve_target

KEYS_ENV_VAR = AESGCMEncryption.ENV_VAR

__all__ = ["parse_duration", "register", "threads_app"]

T = TypeVar("T")
C = TypeVar("C")

threads_app = typer.Typer(
    cls=HelpGroup,
    name="threads",
    help="List, show, compact, export, import, delete, purge, erase, fork and reindex conversation threads.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DURATION_FORMS = "a whole number followed by s, m, h or d (45s, 90m, 12h, 30d)"
_NOT_TOLD_CLUSTER = (MovedError, ClusterCrossSlotError)
_LISTED = 20  # thread ids a text receipt lists; --json lists all
_ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "system": "bold magenta", "tool": "bold yellow"}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` or ``45s`` as a timedelta; anything else raises ``ValueError``."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use {_DURATION_FORMS}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _duration_option(value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def _label_option(values: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values or []:
        key, sep, label = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"invalid label {value!r}: use KEY=VALUE, e.g. user=alice")
        if key in labels and labels[key] != label:
            # A thread carries one value per label: both would match nothing; the last would surprise.
            raise typer.BadParameter(f"label {key!r} given twice ({labels[key]!r} and {label!r}): a thread has one")
        labels[key] = label
    return labels


# -- options shared by every command -------------------------------------------------------
# Every command also takes --redis-url, --key-prefix and --cluster (RedisUrl, KeyPrefix, Cluster),
# so that they may follow it; _registry reads them, with those given before, via resolve_target.

AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@threads_app.callback()
def threads_main(redis_url: RedisUrl = None, key_prefix: KeyPrefix = None, cluster: Cluster = None) -> None:
    """List, show, export, import, delete and purge conversation threads."""


def _registry(target: Target) -> RedisThreadRegistry:
    return RedisThreadRegistry(
        target.require_url(), key_prefix=target.key_prefix, encryption=_encryption_from_env(), cluster=target.cluster
    )


def _encryption_from_env() -> AESGCMEncryption | None:
    """Encrypted prefixes: show, export and import use the keys in $REDIS_CHAT_STORE_KEYS when set."""
    if not os.environ.get(KEYS_ENV_VAR):
        return None
    try:
        return AESGCMEncryption.from_env()
    except (ImportError, TypeError, ValueError) as error:
        fail(str(error))


def _error_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type when it has none (a bare TimeoutError)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _run(
    ctx: typer.Context,
    work: Callable[[RedisThreadRegistry], Awaitable[T]],
    interrupted: Callable[[], str] | None = None,
) -> T:
    """Run ``work`` against the command's registry; package errors become one line on stderr and exit 1.

    The first Ctrl-C stops it: ``interrupted: <what interrupted() says>`` on stderr, exit status 130.
    """
    return _run_on(ctx, _registry, work, interrupted)


def _run_on(
    ctx: typer.Context,
    opener: Callable[[Target], AbstractAsyncContextManager[C]],
    work: Callable[[C], Awaitable[T]],
    interrupted: Callable[[], str] | None = None,
) -> T:
    """``_run`` with what ``opener`` opens for the command's target instead of the registry."""

    target = resolve_target(ctx)

    async def main() -> T:
        async with opener(target) as opened:
            return await work(opened)

    try:
        return run_until_interrupted(main())
    except Interrupted:
        say("interrupted" + (f": {interrupted()}" if interrupted is not None else ""), stderr=True)
        raise typer.Exit(EXIT_STATUS) from None
    # RedisClusterException: e.g. --cluster for a Redis that is not a cluster node.
    except (RedisStoreError, RedisError, RedisClusterException, ValueError, OSError) as error:
        # Only a client that does not know it talks to a cluster meets these (raw from redis-py,
        # or behind the package's error): say how to tell the command.
        if isinstance(error, _NOT_TOLD_CLUSTER) or isinstance(error.__cause__, _NOT_TOLD_CLUSTER):
            fail(f"the Redis at {target.describe_url()} is a Redis Cluster node: pass --cluster or set REDIS_CLUSTER=1")
        if isinstance(error.__cause__, RedisClusterException):
            fail(f"{_error_line(error.__cause__)}: --cluster (or REDIS_CLUSTER=1) needs a Redis Cluster node")
        fail(target.in_cli_terms(_error_line(error)))


@contextmanager
def _progress(description: str, total: int | None, quiet: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr (only on a terminal); yields ``update(done, total)``."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    )
    task = progress.add_task(description, total=total)

    def update(done: int, new_total: int | None = None) -> None:
        progress.update(task, completed=done, total=new_total if new_total is not None else total)

    with progress:
        yield update


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items()) or "-"


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{seconds:g}s"


def _iso(moment: datetime) -> str:
    """As the library's receipts write times: ISO 8601 UTC with milliseconds and a Z."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- receipts: every thread id a deletion removed, kept in a file --------------------------

ReceiptPath = Annotated[
    Path | None,
    typer.Option(
        "--receipt",
        metavar="PATH",
        help="Write the receipt (the --json output, every thread id) to PATH, a new file. Without it, "
        "when more threads were deleted than the output lists, it goes to a new file in the current directory.",
        show_default=False,
    ),
]


def _check_receipt_path(path: Path | None) -> None:
    """Before anything is deleted: that ``--receipt`` names a new file in a directory we may write in."""
    if path is None:
        return
    if path.exists():
        fail(f"--receipt {path}: the file exists; name a new file (a receipt never overwrites one)")
    directory = path.parent
    if not directory.is_dir():
        fail(f"--receipt {path}: there is no directory {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        fail(f"--receipt {path}: cannot create a file in {directory} (permission denied)")


def _create(path: Path, text: str) -> None:
    with path.open("x", encoding="utf-8") as file:
        file.write(text)


def _keep_receipt(receipt: dict[str, Any], path: Path | None, command: str, *, listed: int | None) -> Path | None:
    """Write ``receipt`` to ``path``, or, when none was given and it holds more thread ids than the
    output lists (``listed``; None: it lists them all), to a new file ``<command>-receipt-<UTC
    time>.json`` here; its path.

    A receipt never overwrites a file. If it cannot be written, the deletion being done, every
    thread id goes to stdout instead and the command fails.
    """
    if path is None and (listed is None or len(receipt["thread_ids"]) <= listed):
        return None
    text = json.dumps(receipt, ensure_ascii=False, indent=2) + "\n"
    try:
        if path is not None:
            _create(path, text)
            return path
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for attempt in range(1, 1000):
            candidate = Path(f"{command}-receipt-{stamp}{'' if attempt == 1 else f'-{attempt}'}.json")
            try:
                _create(candidate, text)
            except FileExistsError:
                continue
            return candidate
        raise FileExistsError(f"{command}-receipt-{stamp}-*.json")
    except OSError as error:
        for thread_id in receipt["thread_ids"]:
            say(thread_id)
        where = path if path is not None else Path.cwd()
        fail(f"could not write the receipt in {where} ({error.strerror or error}): its thread ids are listed above")


def _say_receipt(written: Path | None, *, as_json: bool) -> None:
    if written is not None:
        say(f"receipt with every thread id: {written}", stderr=as_json)  # stdout holds the JSON


# -- threads list --------------------------------------------------------------------------


@threads_app.command("list")
def list_threads(
    ctx: typer.Context,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", metavar="KEY=VALUE", help="Only threads with this label (KEY=VALUE); repeatable."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="DURATION", help="Only threads active within, e.g. 7d, 12h.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, help="At most this many threads.")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", metavar="CURSOR", help="Continue after a previous page.")
    ] = None,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Threads by last activity, newest first."""
    labels = _label_option(label)
    active_since = _duration_option(since)

    async def work(registry: RedisThreadRegistry) -> None:
        page = await registry.list_threads(labels=labels, active_since=active_since, limit=limit, cursor=cursor)
        if as_json:
            emit_json(
                {
                    "threads": [t.to_dict() for t in page.threads],
                    "next_cursor": page.next_cursor,
                    "damaged": page.damaged,
                }
            )
            return
        if page.threads:
            _print_threads(out, f"Threads under {registry.key_prefix!r}", page.threads, await registry.now())
        else:
            matching = " matching --label/--since" if labels or active_since else ""
            say(f"no threads{matching} under {registry.key_prefix!r}" + (" after this --cursor" if cursor else ""))
        _say_damaged(page.damaged)
        if page.next_cursor:
            say(f"more threads: --cursor {page.next_cursor}", stderr=True)

    _run(ctx, work)


def _say_damaged(thread_ids: Sequence[str]) -> None:
    """On stderr: the threads a listing skipped because their meta hash is damaged."""
    if thread_ids:
        say(
            f"skipped {len(thread_ids)} thread(s) whose meta hash is damaged "
            f"('threads info ID' names the field): {', '.join(repr(t) for t in thread_ids[:_LISTED])}"
            + (f" and {len(thread_ids) - _LISTED} more" if len(thread_ids) > _LISTED else ""),
            stderr=True,
        )


def _print_threads(
    console: Console, title: str | None, threads: Sequence[ThreadSummary | ThreadInfo], now: datetime
) -> None:
    """The threads as a table where it fits the console whole, else one record per thread (ids never split)."""
    labels = [[shown(f"{key}={value}") for key, value in thread.labels.items()] for thread in threads]
    rows = [
        (
            shown(thread.thread_id),
            str(thread.message_count),
            _ago(thread.last_active, now),
            _ago(thread.created_at, now),
            _seconds_text(thread.ttl),
            ", ".join(labels[index]) or "-",
        )
        for index, thread in enumerate(threads)
    ]

    def facts(index: int) -> list[str]:
        _, messages, last_active, created, ttl, _ = rows[index]
        own = labels[index]
        described = [f"{messages} message(s),", f"last active {last_active},", f"created {created},", f"ttl {ttl},"]
        return described + (["labels", *[f"{label}," for label in own[:-1]], *own[-1:]] if own else ["labels -"])

    table_or_records(console, title, _THREAD_COLUMNS, rows, facts, right={"messages"})


_THREAD_COLUMNS = ("thread", "messages", "last active", "created", "ttl", "labels")


# -- threads show --------------------------------------------------------------------------


def _content_text(content: dict[str, Any]) -> str:
    kind = content.get("type")
    if kind == "text":
        return str(content.get("text", ""))
    if kind == "function_call":
        arguments = content.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        return f"-> call {content.get('name')}({arguments})"
    if kind == "function_result":
        return f"<- result of {content.get('call_id')}: {json.dumps(content.get('result'), ensure_ascii=False)}"
    return f"[{kind}]"


def _role_name(message: dict[str, Any]) -> str:
    role = message.get("role")
    return str(role.get("value") if isinstance(role, dict) else role)


@threads_app.command("show")
def show_thread(
    ctx: typer.Context,
    thread_id: Annotated[str, typer.Argument(metavar="THREAD_ID", help="The thread to show.")],
    last: Annotated[int | None, typer.Option("--last", metavar="N", min=1, help="Only the newest N messages.")] = None,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """A thread's details and its transcript, roles coloured; the summary and where the model's view starts marked."""

    async def work(registry: RedisThreadRegistry) -> None:
        info = await registry.info(thread_id)
        store = _store(registry, thread_id)
        transcript = [m.to_dict(exclude_none=True) for m in await store.transcript(last=last)]
        summary = await store.summary()
        summary_dict = None if summary is None else summary.to_dict(exclude_none=True)
        if as_json:
            emit_json({"thread": info.to_dict(), "summary": summary_dict, "messages": transcript})
            return
        now = await registry.now()
        details = (
            f"  {info.message_count} messages, created {_ago(info.created_at, now)}, "
            f"last active {_ago(info.last_active, now)}, ttl {_seconds_text(info.ttl)} "
            f"(left {_seconds_text(None if info.ttl_remaining is None else round(info.ttl_remaining))}), "
            f"labels {_labels_text(info.labels)}, ~{info.approximate_bytes or 0} bytes"
        )
        out.print(Text.assemble((shown(info.thread_id), "bold"), shown(details)), soft_wrap=True)
        if summary_dict is not None:
            out.print(Text.assemble(("summary", "bold magenta"), f" of the first {info.summarized} stored message(s):"))
            _print_message(summary_dict)
        earlier = info.message_count - len(transcript)
        if earlier > 0:
            out.print(f"... {earlier} earlier messages not shown", style="dim")
        for position, message in enumerate(transcript, start=earlier):
            if summary_dict is not None and position == info.summarized:
                out.print("--- the model sees the summary, then the messages from here on ---", style="dim")
            _print_message(message)

    _run(ctx, work)


def _store(registry: RedisThreadRegistry, thread_id: str, **options: Any) -> RedisChatMessageStore:
    """A store for one of the registry's threads, on its client, that never touches the registry."""
    return RedisChatMessageStore(
        thread_id=thread_id,
        key_prefix=registry.key_prefix,
        redis_client=registry.redis_client,
        registry=False,
        encryption=registry.encryption,
        **options,
    )


def _print_message(message: dict[str, Any]) -> None:
    role = _role_name(message)
    body = "\n".join(_content_text(c) for c in message.get("contents", []))
    out.print(
        Text.assemble((f"{shown(role)}: ", _ROLE_STYLES.get(role, "bold")), shown(body, lines=True)), soft_wrap=True
    )


# -- threads compact -----------------------------------------------------------------------


@threads_app.command("compact")
def compact_threads(
    ctx: typer.Context,
    thread_ids: Annotated[
        list[str] | None, typer.Argument(metavar="THREAD_ID", help="Threads to compact.", show_default=False)
    ] = None,
    compact_all: Annotated[bool, typer.Option("--all", help="Every thread under the prefix.")] = False,
    trigger_messages: Annotated[
        int,
        typer.Option("--trigger-messages", metavar="N", min=2, help="Compact threads with more unsummarized messages."),
    ] = 40,
    keep_last: Annotated[
        int, typer.Option("--keep-last", metavar="N", min=0, help="Newest messages kept verbatim.")
    ] = 10,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be compacted.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Summarize with the offline model (no API key needed).")
    ] = False,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Summarize the older messages of long threads into a summary kept in Redis.

    The summarizer is OpenAI or Azure OpenAI, whose key comes from OPENAI_API_KEY (or the
    AZURE_OPENAI_* variables, also from a .env file); without one, pass --offline to summarize
    with the offline model, which needs no key. The transcript stays whole.
    """
    if bool(thread_ids) == compact_all:
        raise typer.BadParameter("give THREAD_ID... or --all (not both)")
    if keep_last >= trigger_messages:
        raise typer.BadParameter(f"--keep-last ({keep_last}) must be less than --trigger-messages ({trigger_messages})")
    policy: SummaryCompaction | None = None
    if not dry_run:
        policy = SummaryCompaction(
            _summarizer(offline), trigger_messages=trigger_messages, keep_last_messages=keep_last, background=False
        )

    async def work(registry: RedisThreadRegistry) -> list[dict[str, Any]]:
        if thread_ids:
            unknown = await registry.missing(thread_ids)
            if unknown:
                fail(f"unknown thread id(s) under {registry.key_prefix!r}: {', '.join(map(repr, unknown))}")
        rows: list[dict[str, Any]] = []
        with _progress(
            "compacting" if policy else "checking", len(thread_ids) if thread_ids else None, as_json
        ) as update:
            async for thread_id in _export_ids(registry, thread_ids):
                info = await registry.info(thread_id)
                unsummarized = info.message_count - info.summarized
                row: dict[str, Any] = {"thread_id": thread_id, "unsummarized": unsummarized}
                if policy is None:
                    row["due"] = unsummarized > trigger_messages
                else:
                    try:
                        result = await _store(registry, thread_id, compaction=policy).compact()
                    except (RedisStoreError, RedisError):
                        raise
                    except Exception as error:  # the summarizer's (the model's API, a timeout): the next thread
                        row.update(compacted=False, reason="the summarizer failed", error=_error_line(error))
                    else:
                        row.update(result.to_dict())
                rows.append(row)
                update(len(rows), None)
        return rows

    rows = _run(ctx, work)
    failed = [row["thread_id"] for row in rows if "error" in row]
    if as_json:
        emit_json({"dry_run": dry_run, "threads": rows})
    else:
        for row in rows:
            if dry_run:
                verdict = "would be compacted" if row["due"] else "not due"
                line = f"{row['thread_id']}: {row['unsummarized']} unsummarized message(s), {verdict}"
            elif row["compacted"]:
                line = f"{row['thread_id']}: summarized {row['summarized']} message(s)"
            else:
                line = f"{row['thread_id']}: {row['reason']}" + (f" ({row['error']})" if "error" in row else "")
            say(line)
    if failed:
        fail(f"the summarizer failed for {len(failed)} thread(s): {', '.join(failed)}")


def _summarizer(offline: bool) -> Any:
    """The chat client that writes summaries: the demo's choice of model (OpenAI, Azure OpenAI or offline)."""
    from dotenv import find_dotenv, load_dotenv

    from .demo.main import DemoSetupError, choose_model

    load_dotenv(find_dotenv(usecwd=True), override=False)
    try:
        return choose_model(offline=offline, required=not offline).client
    except DemoSetupError as error:
        fail(f"{error.problem}; {error.fix}")


# -- threads export / import ---------------------------------------------------------------


@threads_app.command("export")
def export_threads(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="JSON Lines file to write ('-': stdout); an existing one is asked about.",
        ),
    ],
    thread_ids: Annotated[
        list[str] | None, typer.Argument(metavar="THREAD_ID", help="Threads to export.", show_default=False)
    ] = None,
    export_all: Annotated[bool, typer.Option("--all", help="Export every thread under the prefix.")] = False,
    yes: Yes = False,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Write threads to a JSON Lines file, one thread per line.

    The file is written whole or not at all (a temporary file beside it, renamed at the end). An
    existing file is overwritten only after asking (--yes: do not ask; needed when not on a
    terminal). With -o - the records go to stdout; a reader that stops early (| head) ends the
    export quietly, with exit status 141 as for any command a closed pipe stops.
    """
    if bool(thread_ids) == export_all:
        raise typer.BadParameter("give THREAD_ID... or --all (not both)")
    to_stdout = str(output) == "-"
    if not to_stdout:
        _check_writable(output)
        if output.exists() and must_ask(
            f"threads export -o {output} overwrites {output}", yes=yes, dry_run=False, has_dry_run=False
        ):
            ask(f"Overwrite {output}?")

    async def work(registry: RedisThreadRegistry) -> int:
        if thread_ids:
            unknown = await registry.missing(thread_ids)
            if unknown:
                fail(f"unknown thread id(s) under {registry.key_prefix!r}: {', '.join(map(repr, unknown))}")
        target = sys.stdout if to_stdout else _temporary_beside(output)
        written = 0
        try:
            with _progress("exporting", len(thread_ids) if thread_ids else None, as_json or to_stdout) as update:
                async for thread_id in _export_ids(registry, thread_ids):
                    try:
                        record = await registry.export_thread(thread_id)
                    except LookupError:
                        continue  # deleted or expired since it was listed
                    _write_record(target, record.to_json() + "\n", flush=to_stdout)
                    written += 1
                    update(written, None)
        except BaseException:
            if not to_stdout:
                target.close()
                os.unlink(target.name)
            raise
        if not to_stdout:
            target.close()
            try:
                os.replace(target.name, output)
            except OSError as error:
                os.unlink(target.name)
                fail(f"cannot write {output}: {error.strerror or error}")
        return written

    def interrupted() -> str:
        if to_stdout:
            return "the records on stdout are incomplete"
        return f"{output} was left as it was"  # the records went to a temporary file, now removed

    written = _run(ctx, work, interrupted)
    if to_stdout:
        return  # stdout holds the records; a summary there would corrupt them
    if as_json:
        emit_json({"exported": written, "file": str(output)})
    else:
        say(f"exported {written} thread(s) to {output}", stderr=True)


EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a command that wrote into a closed pipe


def _write_record(target: Any, line: str, *, flush: bool) -> None:
    """Write one record; on stdout, flushed, so that a reader that stopped (| head) stops the export now."""
    try:
        target.write(line)
        if flush:
            target.flush()
    except BrokenPipeError:
        if target is not sys.stdout:
            raise
        # Quietly, as cat or seq end: nothing on stderr, and nothing left for Python to flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise typer.Exit(EXIT_PIPE_CLOSED) from None


def _check_writable(path: Path) -> None:
    """Before connecting: that ``path`` can be written (named as given, never as a temporary file)."""
    directory = path.parent
    if path.is_dir():
        fail(f"cannot write {path}: it is a directory")
    if not directory.is_dir():
        fail(f"cannot write {path}: there is no directory {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        fail(f"cannot write {path}: permission denied in {directory}")


def _temporary_beside(path: Path) -> Any:
    # Written next to the target and renamed at the end: a failed export leaves no half file.
    try:
        return tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent or ".", prefix=f".{path.name}.", delete=False
        )
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}")


async def _export_ids(registry: RedisThreadRegistry, thread_ids: list[str] | None) -> AsyncIterator[str]:
    if thread_ids:
        for thread_id in thread_ids:
            yield thread_id
        return
    async for summary in registry.iter_threads():
        yield summary.thread_id


def _records(lines: BinaryIO) -> Iterator[tuple[int, ThreadRecord | ThreadRecordError]]:
    """(line number, record or the reason it is malformed) for every non-blank line, from the start."""
    lines.seek(0)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, ThreadRecord.from_json(line)
        except ThreadRecordError as error:
            yield number, error


@contextmanager
def _import_source(file: str) -> Iterator[BinaryIO]:
    """The file to import, or for '-' stdin, kept in a temporary file: it is read twice (checked, then imported)."""
    if file != "-":
        with open(file, "rb") as lines:
            yield lines
        return
    with tempfile.TemporaryFile() as copy:
        with answering():  # the read blocks the loop's thread: Ctrl-C must end the read itself
            shutil.copyfileobj(sys.stdin.buffer, copy)
        yield copy


@threads_app.command("import")
def import_threads(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="JSON Lines file written by 'threads export' ('-': stdin).")
    ],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Import the good lines, report the bad (fails if every line is bad).")
    ] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite threads that already exist.")] = False,
    dry_run: DryRun = False,
    yes: Yes = False,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Recreate exported threads: messages, order, labels, timestamps and TTL.

    The file is checked completely first: unless --skip-bad, one bad line (named by its
    number) means nothing is imported. Existing threads are refused unless --replace, which
    lists them and asks first (--yes: do not ask; needed when not on a terminal, and with
    '-', whose stdin is the file). --dry-run checks the file and counts the threads it would
    create and replace.
    """
    if file != "-" and not Path(file).is_file():
        raise typer.BadParameter(f"{file}: no such file", param_hint="'FILE'")
    name = "stdin" if file == "-" else file
    asking = replace and must_ask("threads import --replace overwrites threads", yes=yes, dry_run=dry_run)
    target = resolve_target(ctx)
    # What an interruption leaves: (threads imported, threads to import), and the line being imported.
    imported, importing_total, underway = 0, 0, None

    def problem(line: int, text: str) -> str:
        return f"{name}, line {line}: {text}"

    async def work(registry: RedisThreadRegistry) -> dict[str, Any]:
        with _import_source(file) as lines:
            return await check_and_import(registry, lines)

    async def check_and_import(registry: RedisThreadRegistry, lines: BinaryIO) -> dict[str, Any]:
        nonlocal imported, importing_total, underway
        bad: dict[int, str] = {}  # line: what is wrong with it
        seen: dict[str, int] = {}
        for number, record in _records(lines):
            if number % 1000 == 0:
                await asyncio.sleep(0)  # a large file is read on the loop's thread: let Ctrl-C in
            if isinstance(record, ThreadRecordError):
                bad[number] = str(record)
            elif record.thread_id in seen:
                bad[number] = f"thread {record.thread_id!r} already on line {seen[record.thread_id]}"
            else:
                seen[record.thread_id] = number
        absent = set(await registry.missing(list(seen))) if seen else set()
        existing = {} if replace else {line: tid for tid, line in seen.items() if tid not in absent}
        bad.update({line: f"thread {tid!r} already exists (use --replace)" for line, tid in existing.items()})
        problems = [problem(line, bad[line]) for line in sorted(bad)]
        if problems and not skip_bad:
            for text in problems[:20]:
                say(text, stderr=True)
            hints = ["--skip-bad imports the rest"]
            if existing:
                hints.insert(0, f"--replace overwrites the {len(existing)} existing thread(s)")
            fail(f"{len(problems)} problem line(s) in {name}; nothing was imported ({'; '.join(hints)})")
        for text in problems:
            say(f"{'would skip' if dry_run else 'skipped'} {text}", stderr=True)
        importing = [tid for tid, line in seen.items() if line not in bad]
        if problems and not importing:
            fail(f"every line of {name} is bad ({len(problems)}, listed above); nothing was imported")
        replacing = [tid for tid in importing if tid not in absent]
        if dry_run:
            new = len(importing) - len(replacing)
            return {
                "dry_run": True,
                "new": new,
                "replacing": len(replacing),
                "skipped": len(problems),
                "problems": problems,
            }
        if asking and replacing:
            for thread_id in replacing[:20]:
                say(f"replaces {thread_id!r}", stderr=True)
            if len(replacing) > 20:
                err.print(f"... and {len(replacing) - 20} more")
            ask(f"Replace {len(replacing)} existing thread(s) under {target.describe()} with their copies in {name}?")
        importing_total = len(importing)
        with _progress("importing", importing_total, as_json) as update:
            for number, record in _records(lines):
                if number in bad or isinstance(record, ThreadRecordError):
                    continue
                underway = (number, record.thread_id)
                if await registry.import_thread(record, replace=replace):
                    imported += 1
                else:
                    problems.append(problem(number, f"thread {record.thread_id!r} was created meanwhile; skipped"))
                underway = None
                update(imported, None)
        return {"imported": imported, "skipped": len(problems), "problems": problems}

    def interrupted() -> str:
        if not importing_total:
            return "nothing was imported"
        done = f"imported {imported} of {importing_total} thread(s), each whole"
        if underway is not None:
            done += f"; the thread of line {underway[0]} ({underway[1]!r}) is imported whole or not at all"
        return f"{done}; run it again{'' if replace else ' with --skip-bad'} to import the rest"

    result = _run(ctx, work, interrupted)
    if as_json:
        emit_json(result)
    elif dry_run:
        err.print(
            f"would import {result['new'] + result['replacing']} thread(s) ({result['replacing']} replacing existing "
            f"ones), skip {result['skipped']}; nothing imported (--dry-run)"
        )
    else:
        err.print(f"imported {result['imported']} thread(s), skipped {result['skipped']}")


# -- threads delete / purge ----------------------------------------------------------------


@threads_app.command("delete")
def delete_threads(
    ctx: typer.Context,
    thread_ids: Annotated[
        list[str], typer.Argument(metavar="THREAD_ID", help="Threads to delete.", show_default=False)
    ],
    dry_run: DryRun = False,
    yes: Yes = False,
    receipt_path: ReceiptPath = None,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Delete threads and their registry entries (all named threads must exist).

    Lists the threads and asks first (--yes: do not ask; needed when not on a terminal).
    --dry-run lists them, with their message counts, and deletes nothing. Deleting more than
    20 threads leaves a receipt file (see --receipt).
    """
    asking = must_ask("threads delete deletes threads", yes=yes, dry_run=dry_run)
    _check_receipt_path(receipt_path)
    target = resolve_target(ctx)

    async def delete(registry: RedisThreadRegistry) -> dict[str, Any]:
        started = await registry.now()
        deleted = await registry.delete(thread_ids)
        return {
            "key_prefix": registry.key_prefix,
            "deleted": deleted,
            "thread_ids": list(dict.fromkeys(thread_ids)),
            "started_at": _iso(started),
            "finished_at": _iso(await registry.now()),
        }

    async def work(registry: RedisThreadRegistry) -> dict[str, Any] | None:
        unknown = await registry.missing(thread_ids)
        if unknown:
            unknown_ids = ", ".join(map(repr, unknown))
            fail(f"unknown thread id(s) under {registry.key_prefix!r}: {unknown_ids}; nothing deleted")
        if not (dry_run or asking):
            return await delete(registry)
        threads = [await registry.info(thread_id) for thread_id in dict.fromkeys(thread_ids)]
        messages = sum(info.message_count for info in threads)
        title = f"{len(threads)} thread(s), {messages} message(s), under {target.describe()}"
        if dry_run and as_json:
            emit_json({"dry_run": True, "threads": [info.to_dict() for info in threads]})
        elif dry_run:
            say(f"Would delete {title}:")
            _print_threads(out, None, threads, await registry.now())
            out.print("nothing deleted (--dry-run)")
        else:
            say(f"About to delete {title}:", stderr=True)
            _print_threads(err, None, threads, await registry.now())
            ask(f"Delete these {len(threads)} thread(s)?")
            return await delete(registry)
        return None

    receipt = _run(ctx, work)
    if receipt is None:
        return
    written = _keep_receipt(receipt, receipt_path, "delete", listed=None if as_json else _LISTED)
    if as_json:
        emit_json(receipt)
    else:
        out.print(f"deleted {receipt['deleted']} thread(s)")
    _say_receipt(written, as_json=as_json)


@threads_app.command("purge")
def purge_threads(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option("--older-than", metavar="DURATION", help="Inactive for longer than this: 30d, 12h, 90m.")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be deleted.")] = False,
    yes: Yes = False,
    receipt_path: ReceiptPath = None,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Delete every thread inactive for longer than --older-than (and forget expired ones).

    Counts them and asks first (--yes: do not ask; needed when not on a terminal). Lists the
    first 20 threads deleted; more leave a receipt file with every id (see --receipt).
    """
    age = _duration_option(older_than)
    assert age is not None
    asking = must_ask("threads purge deletes threads", yes=yes, dry_run=dry_run)
    _check_receipt_path(receipt_path)
    target = resolve_target(ctx)

    async def receipt(registry: RedisThreadRegistry, result: PurgeResult, started: datetime) -> dict[str, Any]:
        finished = _iso(await registry.now())
        return {
            "key_prefix": registry.key_prefix,
            **result.to_dict(),
            "started_at": _iso(started),
            "finished_at": finished,
        }

    async def work(registry: RedisThreadRegistry) -> dict[str, Any]:
        if asking:
            started = await registry.now()
            with _progress("checking", None, as_json) as update:
                preview = await registry.purge(older_than=age, dry_run=True, on_progress=update)
            if not (preview.purged or preview.expired):
                # Nothing to delete, nothing to ask: what a purge that found nothing says.
                return {**await receipt(registry, preview, started), "dry_run": False}
            ask(
                f"Delete {preview.purged} thread(s) under {target.describe()} inactive for longer than "
                f"{older_than} (since {preview.to_dict()['cutoff']}), and remove {preview.expired} expired "
                f"entr{'y' if preview.expired == 1 else 'ies'}?"
            )
        started = await registry.now()
        with _progress("purging" if not dry_run else "checking", None, as_json) as update:
            result = await registry.purge(older_than=age, dry_run=dry_run, on_progress=update)
        return await receipt(registry, result, started)

    result = _run(ctx, work)
    written = _keep_receipt(result, receipt_path, "purge", listed=None if as_json or dry_run else _LISTED)
    if as_json:
        emit_json(result)
        _say_receipt(written, as_json=True)
        return
    verb = "would delete" if dry_run else "deleted"
    say(
        f"{verb} {result['purged']} thread(s) inactive since {result['cutoff']}; "
        f"{result['expired']} expired entr{'y' if result['expired'] == 1 else 'ies'} "
        f"{'to remove' if dry_run else 'removed'}; {result['kept']} kept (written meanwhile)"
    )
    _say_ids(result["thread_ids"], written)
    _say_receipt(written, as_json=False)
    if result["damaged"]:
        say(f"kept {len(result['damaged'])} thread(s) whose last activity cannot be read:", stderr=True)
        _say_damaged(result["damaged"])


# -- threads erase / reindex / fork --------------------------------------------------------


@threads_app.command("erase")
def erase_threads(
    ctx: typer.Context,
    label: Annotated[
        list[str],
        typer.Option(
            "--label",
            "-l",
            metavar="KEY=VALUE",
            help="KEY=VALUE the threads carry (repeat: all of them), e.g. user=alice.",
        ),
    ],
    dry_run: DryRun = False,
    yes: Yes = False,
    receipt_path: ReceiptPath = None,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Erase every thread carrying all the --label's (e.g. one user's), and print a receipt.

    Every key of each thread and every registry and index entry naming it; threads of those labels
    written meanwhile are erased too and listed. Counts them and asks first (--yes: do not ask;
    needed when not on a terminal). --json prints the receipt (thread ids, counts, times). The
    printed receipt lists the first 20 threads; more leave the whole receipt in a file (see --receipt).
    """
    labels = _label_option(label)
    asking = must_ask("threads erase deletes threads", yes=yes, dry_run=dry_run)
    _check_receipt_path(receipt_path)
    target = resolve_target(ctx)

    async def work(registry: RedisThreadRegistry) -> dict[str, Any]:
        expected: int | None = None
        if asking:
            preview = await registry.erase(labels=labels, dry_run=True)
            expected = len(preview.thread_ids)
            if not expected:  # nothing to erase, nothing to ask: nothing is deleted unasked either
                return {"key_prefix": registry.key_prefix, **preview.to_dict(), "dry_run": False}
            ask(
                f"Erase {expected} thread(s) ({preview.messages_deleted} message(s)) carrying "
                f"{_labels_text(labels)} under {target.describe()}?"
            )
        with _progress("checking" if dry_run else "erasing", expected, as_json) as update:
            receipt = await registry.erase(labels=labels, dry_run=dry_run, on_progress=lambda done: update(done, None))
        return {"key_prefix": registry.key_prefix, **receipt.to_dict()}

    receipt = _run(ctx, work, lambda: "the erasure is incomplete (each thread is deleted whole): run it again")
    written = _keep_receipt(receipt, receipt_path, "erase", listed=None if as_json or dry_run else _LISTED)
    if as_json:
        emit_json(receipt)
    else:
        _print_receipt(receipt, labels, dry_run=dry_run, written=written)
    _say_receipt(written, as_json=as_json)
    if not receipt["complete"]:
        left = receipt["remaining"]
        fail(
            f"{len(left)} thread(s) still hold keys after every round (written again meanwhile, or not "
            f"deletable): {', '.join(repr(t) for t in left[:_LISTED])}; run it again"
        )
    if receipt["unverified"]:
        fail(
            f"{len(receipt['unverified'])} thread(s) left alone: their labels can be read nowhere (meta hash "
            f"missing or damaged, label indexes incomplete), so they may carry these labels: "
            f"{', '.join(repr(t) for t in receipt['unverified'][:_LISTED])}; inspect them with 'threads show ID' "
            "and delete them with 'threads delete ID', or run 'threads reindex'"
        )


def _print_receipt(receipt: dict[str, Any], labels: dict[str, str], *, dry_run: bool, written: Path | None) -> None:
    erased = receipt["thread_ids"]
    during = len(receipt["written_during"])
    say(
        f"{'would erase' if dry_run else 'erased'} {len(erased)} thread(s) carrying {_labels_text(labels)} "
        f"({receipt['keys_deleted']} key(s), {receipt['messages_deleted']} message(s))"
        + (f", {during} of them written during the erasure" if during else "")
    )
    _say_ids(erased, written)


def _say_ids(thread_ids: Sequence[str], written: Path | None) -> None:
    """The first thread ids, one a line; where the rest are."""
    for thread_id in thread_ids[:_LISTED]:
        say(f"  {thread_id}")
    if len(thread_ids) > _LISTED:
        say(f"  ... and {len(thread_ids) - _LISTED} more" + ("" if written is not None else " (--json lists them all)"))


@threads_app.command("reindex")
def reindex_threads(
    ctx: typer.Context,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Build the label indexes for threads written before them (safe while the application runs).

    Afterwards 'threads list --label' and 'threads erase' read one user's threads from an index
    instead of every registry entry.
    """

    async def work(registry: RedisThreadRegistry) -> dict[str, Any]:
        known = await registry.count()
        with _progress("indexing", known or None, as_json) as update:
            indexed = await registry.reindex(on_progress=update)
        return {"key_prefix": registry.key_prefix, "threads": indexed}

    result = _run(ctx, work)
    if as_json:
        emit_json(result)
    else:
        say(f"indexed the labels of {result['threads']} thread(s) under {result['key_prefix']!r}")


@threads_app.command("fork")
def fork_thread(
    ctx: typer.Context,
    thread_id: Annotated[str, typer.Argument(metavar="THREAD_ID", help="Thread to copy.", show_default=False)],
    new_id: Annotated[
        str | None,
        typer.Option("--new-id", metavar="THREAD_ID", help="Id of the copy (must not exist; default: a new one)."),
    ] = None,
    upto: Annotated[
        int | None, typer.Option("--upto", metavar="N", min=1, help="Copy only the first N messages.")
    ] = None,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Copy a thread (all its messages, or the first --upto) into a new thread; prints the new id."""

    async def work(registry: RedisThreadRegistry) -> dict[str, Any]:
        forked = await registry.fork(thread_id, new_id, upto=upto)
        return (await registry.info(forked)).to_dict()

    info = _run(ctx, work)
    if as_json:
        emit_json(info)
    else:
        say(info["thread_id"])
        say(f"forked {thread_id!r} into {info['thread_id']!r} ({info['message_count']} message(s))", stderr=True)


# -- threads rekey -------------------------------------------------------------------------


@threads_app.command("rekey")
def rekey_threads(
    ctx: typer.Context,
    current: Annotated[
        str | None,
        typer.Option("--current", metavar="KEY_ID", help="Key id to encrypt with (default: the first key listed)."),
    ] = None,
    keys_env: Annotated[
        str,
        typer.Option(
            "--keys-env", metavar="NAME", help="Environment variable that holds the keys as 'k2:<base64>,k1:<base64>'."
        ),
    ] = KEYS_ENV_VAR,
    encrypt_plaintext: Annotated[
        bool, typer.Option("--encrypt-plaintext", help="Also encrypt entries written before encryption was on.")
    ] = False,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Re-encrypt every thread and workflow checkpoint of the prefix with the current key, while the application runs.

    Keys come only from an environment variable, never the command line (shell history and process lists keep it).
    Safe to interrupt and run again.
    """
    try:
        encryption = AESGCMEncryption.from_env(keys_env, current=current)
    except (ImportError, TypeError, ValueError) as error:
        fail(str(error))

    async def work(registry: RedisThreadRegistry) -> dict[str, Any]:
        known = await registry.count()  # the bar's estimate
        with _progress("rekeying", known or None, as_json) as update:

            def report(progress: RekeyProgress) -> None:
                update(progress.threads_seen, max(known, progress.threads_seen) if known else None)

            result = await rekey_prefix(
                registry.redis_client,
                encryption,
                key_prefix=registry.key_prefix,
                encrypt_plaintext=encrypt_plaintext,
                on_progress=report,
            )
        return {
            "key_prefix": registry.key_prefix,
            "current_key_id": encryption.key_id,
            "threads": result.threads_seen,
            "threads_changed": result.threads_changed,
            "entries_rekeyed": result.entries_rekeyed,
            "checkpoints_rekeyed": result.checkpoints_rekeyed,
            "skipped": [{"key": key, "reason": reason} for key, reason in result.skipped],
        }

    result = _run(ctx, work)
    if as_json:
        emit_json(result)
    else:
        say(
            f"re-encrypted {result['entries_rekeyed']} entr{'y' if result['entries_rekeyed'] == 1 else 'ies'} "
            f"in {result['threads_changed']} of {result['threads']} thread(s) with key {result['current_key_id']!r}"
            + (f", and {checkpoints} workflow checkpoint(s)" if (checkpoints := result["checkpoints_rekeyed"]) else "")
        )
        for skipped in result["skipped"]:
            say(f"skipped {skipped['key']!r}: {skipped['reason']}", stderr=True)
    if result["skipped"]:
        fail(f"{len(result['skipped'])} key(s) left as they were (listed above): the rest is rekeyed")


# -- stats ---------------------------------------------------------------------------------


def stats(
    ctx: typer.Context,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Threads, messages, bytes and thread lengths under a key prefix."""

    async def work(registry: RedisThreadRegistry) -> dict[str, Any]:
        return (await registry.stats()).to_dict()

    result = _run(ctx, work)
    if as_json:
        emit_json(result)
        return
    table = Table(title=shown(f"Key prefix {result['key_prefix']!r}"), title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("threads", str(result["threads"]))
    table.add_row("messages", str(result["messages"]))
    size = result["approximate_bytes"]
    table.add_row("approximate bytes", "unknown" if size is None else f"{size:,}")
    table.add_row("oldest activity", result["oldest_activity"] or "-")
    table.add_row("newest activity", result["newest_activity"] or "-")
    for bucket, count in result["length_distribution"].items():
        table.add_row(f"threads of {bucket} message(s)", str(count))
    if result["damaged"]:
        table.add_row("threads skipped (damaged meta hash)", str(result["damaged"]))
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``threads`` and ``stats`` to the ``redis-chat-store`` app."""
    app.add_typer(threads_app, name="threads")
    app.command("stats")(stats)
