"""``redis-chat-store migrate ...``: bring threads from other Redis chat stores into this store's layout.

A client of the package's public API only (``migrate_agent_framework_redis``,
``migrate_langchain``, ``RedisThreadRegistry``, ``ConnectionSettings``). Prints a summary
(or ``--json``), lists what needs attention on stderr, and exits 1 when a thread was left
behind (a conflict, a difference, a failure) so that scripts notice; errors are one line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import redis.asyncio
import typer

from agent_framework_redis_store import (
    ConnectionSettings,
    MigrationProgress,
    MigrationReport,
    RedisThreadRegistry,
    migrate_agent_framework_redis,
    migrate_langchain,
    redact_url,
)

from .confirm import Yes, ask, must_ask
from .console import emit_json, err, fail, say
from .help import HelpGroup
from .target import Cluster, KeyPrefix, RedisUrl, Target, in_cli_terms, resolve_target
from .threads import AsJson, _label_option, _progress, _run

__all__ = ["migrate_app", "register"]

migrate_app = typer.Typer(
    cls=HelpGroup,
    name="migrate",
    help="Copy threads from Microsoft's agent-framework-redis or LangChain's Redis history into this store.",
    no_args_is_help=True,
)

# Problems listed on stderr before "--json lists every thread" takes over.
_SHOWN = 20

SourceUrl = Annotated[
    str | None,
    typer.Option(
        "--source-url",
        metavar="URL",
        help="Redis holding the threads to copy (default: --redis-url).",
        show_default=False,
    ),
]
Labels = Annotated[
    list[str] | None,
    typer.Option("--label", metavar="KEY=VALUE", help="Add this label (KEY=VALUE) to every thread copied; repeatable."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Write nothing; report what would be copied.")]
Replace = Annotated[
    bool, typer.Option("--replace", help="Overwrite target threads that hold other messages (default: report them).")
]
DeleteSource = Annotated[
    bool,
    typer.Option("--delete-source", help="Delete each source key once its copy is read back and found equal."),
]
Concurrency = Annotated[int, typer.Option("--concurrency", metavar="N", min=1, help="Threads copied at once.")]


@migrate_app.callback()
def migrate_main(redis_url: RedisUrl = None, key_prefix: KeyPrefix = None, cluster: Cluster = None) -> None:
    """Copy threads from another Redis chat store into this store's layout (safe to run again)."""


# The flags that destroy data: what each destroys, and how the question says it.
_DESTRUCTIVE = {
    "--replace": ("overwrites threads", "replacing target threads that hold other messages"),
    "--delete-source": ("deletes source keys", "deleting each source key once its copy reads back equal"),
}


def _question(command: str, *, replace: bool, delete_source: bool, dry_run: bool, yes: bool) -> str | None:
    """What to ask about (None: nothing to ask); exits 1 when it must be asked and cannot be."""
    flags = [flag for flag, on in (("--replace", replace), ("--delete-source", delete_source)) if on]
    harm = " and ".join(_DESTRUCTIVE[flag][0] for flag in flags)
    if not flags or not must_ask(f"migrate {command} {' '.join(flags)} {harm}", yes=yes, dry_run=dry_run):
        return None
    return " and ".join(_DESTRUCTIVE[flag][1] for flag in flags)


Migrate = Callable[
    [redis.asyncio.Redis, RedisThreadRegistry, Callable[[MigrationProgress], None]], Awaitable[MigrationReport]
]


def _migrate(
    ctx: typer.Context, command: str, source_url: str | None, as_json: bool, question: str | None, migrate: Migrate
) -> None:
    """Run ``migrate`` from the source (``--source-url``, else the target's Redis) into the target; report.

    ``question``: what to ask the operator about first (see ``_question``).
    """
    target = resolve_target(ctx)
    source = source_url or target.require_url()
    if source_url is None and target.cluster:
        fail("the source stores run on a standalone Redis: pass --source-url with --cluster")
    try:
        ConnectionSettings(redis_url=source)
    except ValueError as error:  # named here: inside the command, "--redis-url" would be the target's
        fail(
            in_cli_terms(
                str(error), url_flag="--source-url" if source_url else target.redis_url_source or "--redis-url"
            )
        )
    if question is not None:
        ask(f"Copy the threads of {command} at {redact_url(source)} into {target.describe()}, {question}?")

    async def work(registry: RedisThreadRegistry) -> MigrationReport:
        # Its own client (the stores' connection defaults); the URL is checked and redacted in errors.
        client = ConnectionSettings(redis_url=source).create_client()
        assert isinstance(client, redis.asyncio.Redis)
        try:
            with _progress("migrating", None, as_json) as update:
                return await migrate(client, registry, lambda p: update(p.done, p.total))
        finally:
            await client.aclose()

    report = _run(ctx, work, lambda: "each thread is copied whole or not at all: run it again to copy the rest")
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_problems(report)
        say(_summary(report, redact_url(source), target))
    if not report.complete:
        raise typer.Exit(1)


def _print_problems(report: MigrationReport) -> None:
    problems = [t for t in report.threads if t.outcome in ("conflict", "differs", "failed")]
    for thread in problems[:_SHOWN]:
        name = repr(thread.thread_id) if thread.thread_id is not None else "(no thread id)"
        say(f"{thread.outcome}: {name} from {', '.join(map(repr, thread.source_keys))}: {thread.detail}", stderr=True)
    if len(problems) > _SHOWN:
        err.print(f"... and {len(problems) - _SHOWN} more (--json lists every thread)")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _summary(report: MigrationReport, source: str, target: Target) -> str:
    dry = report.dry_run
    parts = [
        f"{'would copy' if dry else 'copied'} {_plural(report.migrated, 'thread')} "
        f"({_plural(report.messages, 'message')}) from {report.source} at {source} to key prefix {target.key_prefix!r}",
        f"{report.skipped:,} already there",
    ]
    if report.replaced:
        parts.append(f"{report.replaced:,} {'would replace' if dry else 'replaced'}")
    parts.append(_plural(report.conflicts, "conflict"))
    parts.append(f"{report.differing:,} differing")
    parts.append(f"{report.failed:,} failed")
    if report.sources_deleted:
        parts.append(f"{_plural(report.sources_deleted, 'source key')} {'to delete' if dry else 'deleted'}")
    return "; ".join(parts)


@migrate_app.command("agent-framework-redis")
def agent_framework_redis(
    ctx: typer.Context,
    source_url: SourceUrl = None,
    source_key_prefix: Annotated[
        str, typer.Option("--source-key-prefix", metavar="PREFIX", help="key_prefix of Microsoft's store or provider.")
    ] = "chat_messages",
    source_id: Annotated[
        str | None,
        typer.Option("--source-id", metavar="ID", help="Only the 1.x provider's scoped keys of this source_id."),
    ] = None,
    thread_id_template: Annotated[
        str | None,
        typer.Option(
            "--thread-id-template",
            metavar="TEMPLATE",
            help="Thread ids of scoped keys, e.g. '{application}:{session_id}' "
            "(fields: tenant, application, agent, source_id, session_id).",
        ),
    ] = None,
    label: Labels = None,
    dry_run: DryRun = False,
    replace: Replace = False,
    delete_source: DeleteSource = False,
    yes: Yes = False,
    concurrency: Concurrency = 8,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Copy the threads of Microsoft's agent-framework-redis stores, legacy and 1.x.

    Finds the legacy RedisChatMessageStore's keys and the 1.x RedisHistoryProvider's (scoped, and
    key_format="legacy"). The thread id is the thread or session id; tenant, application and agent
    become labels. Two keys with one session id are a conflict, and neither is copied:
    --thread-id-template names them apart. Safe to run again. --replace and --delete-source
    ask first (--yes: do not ask; needed when not on a terminal).
    """
    question = _question(
        "agent-framework-redis", replace=replace, delete_source=delete_source, dry_run=dry_run, yes=yes
    )
    labels = _label_option(label)

    def migrate(
        source: redis.asyncio.Redis, target: RedisThreadRegistry, progress: Callable[[MigrationProgress], None]
    ) -> Awaitable[MigrationReport]:
        return migrate_agent_framework_redis(
            source,
            target,
            source_key_prefix=source_key_prefix,
            source_id=source_id,
            thread_id_template=thread_id_template,
            labels=labels,
            dry_run=dry_run,
            replace=replace,
            delete_source=delete_source,
            on_progress=progress,
            concurrency=concurrency,
        )

    _migrate(ctx, "agent-framework-redis", source_url, as_json, question, migrate)


@migrate_app.command("langchain")
def langchain(
    ctx: typer.Context,
    source_url: SourceUrl = None,
    source_key_prefix: Annotated[
        str,
        typer.Option(
            "--source-key-prefix", metavar="PREFIX", help="key_prefix of LangChain's RedisChatMessageHistory."
        ),
    ] = "message_store:",
    label: Labels = None,
    dry_run: DryRun = False,
    replace: Replace = False,
    delete_source: DeleteSource = False,
    yes: Yes = False,
    concurrency: Concurrency = 8,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Copy LangChain's community RedisChatMessageHistory histories.

    Each session becomes the thread of the same id, oldest message first, as framework messages:
    human/ai/system/tool become user/assistant/system/tool, with tool calls and their ids. Safe to
    run again. --replace and --delete-source ask first (--yes: do not ask; needed when not on a terminal).
    """
    question = _question("langchain", replace=replace, delete_source=delete_source, dry_run=dry_run, yes=yes)
    labels = _label_option(label)

    def migrate(
        source: redis.asyncio.Redis, target: RedisThreadRegistry, progress: Callable[[MigrationProgress], None]
    ) -> Awaitable[MigrationReport]:
        return migrate_langchain(
            source,
            target,
            source_key_prefix=source_key_prefix,
            labels=labels,
            dry_run=dry_run,
            replace=replace,
            delete_source=delete_source,
            on_progress=progress,
            concurrency=concurrency,
        )

    _migrate(ctx, "langchain", source_url, as_json, question, migrate)


def register(app: typer.Typer) -> None:
    """Add ``migrate`` to the ``redis-chat-store`` app."""
    app.add_typer(migrate_app, name="migrate")
