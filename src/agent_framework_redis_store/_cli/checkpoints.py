"""``redis-chat-store checkpoints ...``: operate the workflow checkpoints of ``RedisCheckpointStorage``.

A client of the package's public API only. Nothing here restores a checkpoint: listings come
from the workflows' timelines, ``show`` reads a checkpoint's top-level JSON fields (a sealed
one authenticated first, with the keys in $REDIS_CHAT_STORE_KEYS) and unpickles nothing. Every
read command takes ``--json``; errors are one line on stderr and exit status 1 (2 for a
malformed command line, 130 for Ctrl-C), as for ``threads``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agent_framework_redis_store import CheckpointInfo, RedisCheckpointStorage

from .confirm import DryRun, Yes, ask, must_ask
from .console import emit_json, err, fail, out, say, shown, table_or_records
from .help import HelpGroup
from .target import Cluster, KeyPrefix, RedisUrl, Target, resolve_target
from .threads import AsJson, _ago, _encryption_from_env, _run_on

__all__ = ["checkpoints_app", "register"]

_LISTED = 20  # checkpoint ids a text report lists; --json lists all

checkpoints_app = typer.Typer(
    cls=HelpGroup,
    name="checkpoints",
    help="List, show, delete and prune workflow checkpoints (RedisCheckpointStorage).",
    no_args_is_help=True,
)

Workflow = Annotated[str, typer.Option("--workflow", "-w", help="The workflow's name.", show_default=False)]
Limit = Annotated[int, typer.Option("--limit", min=1, help="At most this many.")]
Cursor = Annotated[str | None, typer.Option("--cursor", help="Continue after a previous page.")]


@checkpoints_app.callback()
def checkpoints_main(redis_url: RedisUrl = None, key_prefix: KeyPrefix = None, cluster: Cluster = None) -> None:
    """List, show, delete and prune workflow checkpoints (RedisCheckpointStorage)."""


def _storage(target: Target) -> RedisCheckpointStorage:
    return RedisCheckpointStorage(
        target.require_url(), key_prefix=target.key_prefix, encryption=_encryption_from_env(), cluster=target.cluster
    )


def _size_text(info: CheckpointInfo) -> str:
    how = [word for word, applies in (("compressed", info.compressed), ("sealed", info.key_id)) if applies]
    return f"{info.size_bytes:,} bytes" + (f" ({', '.join(how)})" if how else "")


def _print_checkpoints(
    title: str | None, checkpoints: Sequence[CheckpointInfo], now: datetime, console: Console = out
) -> None:
    rows = [
        (
            shown(info.checkpoint_id),
            shown(info.workflow_name),
            f"{info.saved_at.isoformat(timespec='milliseconds')} ({_ago(info.saved_at, now)})",
            f"{info.size_bytes:,}",
        )
        for info in checkpoints
    ]

    def facts(index: int) -> list[str]:
        _, workflow, saved, size = rows[index]
        return ["workflow", f"{workflow},", "saved", *saved.split(" "), "size", f"{size} bytes"]

    table_or_records(console, title, ("checkpoint", "workflow", "saved", "bytes"), rows, facts, right={"bytes"})


def _ids_text(checkpoint_ids: Sequence[str]) -> str:
    listed = ", ".join(repr(c) for c in checkpoint_ids[:_LISTED])
    return listed + (f" and {len(checkpoint_ids) - _LISTED} more" if len(checkpoint_ids) > _LISTED else "")


# -- checkpoints list / show ------------------------------------------------------------------


@checkpoints_app.command("list")
def list_checkpoints(
    ctx: typer.Context,
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", "-w", help="List this workflow's checkpoints (default: list the workflows)."),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Workflows with their checkpoint counts and newest checkpoint; with --workflow, its checkpoints, newest first."""

    async def work(storage: RedisCheckpointStorage) -> None:
        now = datetime.now(UTC)
        if workflow is not None:
            page = await storage.checkpoint_page(workflow, limit=limit, cursor=cursor)
            if as_json:
                emit_json(
                    {
                        "workflow_name": workflow,
                        "checkpoints": [info.to_dict() for info in page.checkpoints],
                        "next_cursor": page.next_cursor,
                    }
                )
                return
            title = f"Checkpoints of workflow {workflow!r} under {storage.key_prefix!r}, newest first"
            _print_checkpoints(title, page.checkpoints, now)
            if page.next_cursor:
                say(f"more checkpoints: --cursor {page.next_cursor}", stderr=True)
            return
        workflows = await storage.workflows(after=cursor, limit=limit + 1)
        more, workflows = len(workflows) > limit, workflows[:limit]
        next_cursor = workflows[-1].workflow_name if more else None
        if as_json:
            emit_json({"workflows": [w.to_dict() for w in workflows], "next_cursor": next_cursor})
            return
        rows = [
            (
                shown(summary.workflow_name),
                str(summary.checkpoints),
                shown(summary.latest_checkpoint_id),
                f"{summary.latest_saved_at.isoformat(timespec='milliseconds')} ({_ago(summary.latest_saved_at, now)})",
            )
            for summary in workflows
        ]

        def facts(index: int) -> list[str]:
            _, count, latest, saved = rows[index]
            return [f"{count} checkpoint(s),", "latest", f"{latest},", "saved", *saved.split(" ")]

        columns = ("workflow", "checkpoints", "latest checkpoint", "latest saved")
        title = f"Workflows with checkpoints under {storage.key_prefix!r}"
        table_or_records(out, title, columns, rows, facts, right={"checkpoints"})
        if next_cursor is not None:
            # The cursor is a workflow name: printed as the shell would need it quoted.
            say(f"more workflows: --cursor {next_cursor!r}", stderr=True)

    _run_on(ctx, _storage, work)


@checkpoints_app.command("show")
def show_checkpoint(
    ctx: typer.Context,
    checkpoint_id: Annotated[str, typer.Argument(help="The checkpoint to show.", show_default=False)],
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """A checkpoint's workflow, save time, previous checkpoint, iteration, pending requests and size.

    Read from its top-level JSON fields without restoring it: nothing is unpickled. A sealed
    checkpoint is authenticated first, with the keys in $REDIS_CHAT_STORE_KEYS; without them only
    what the workflow's timeline says is shown.
    """

    async def work(storage: RedisCheckpointStorage) -> CheckpointInfo:
        info = await storage.checkpoint_info(checkpoint_id)
        if info is None:
            fail(f"unknown checkpoint id under {storage.key_prefix!r}: {checkpoint_id!r}")
        return info

    info = _run_on(ctx, _storage, work)
    if as_json:
        emit_json(info.to_dict())
        return
    now = datetime.now(UTC)
    table = Table(title=shown(info.checkpoint_id), title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    unknown = "-" if info.details else "? (sealed)"
    rows = {
        "workflow": shown(info.workflow_name),
        "saved": f"{info.saved_at.isoformat(timespec='milliseconds')} ({_ago(info.saved_at, now)})",
        "previous checkpoint": shown(info.previous_checkpoint_id) if info.previous_checkpoint_id else unknown,
        "iteration": unknown if info.iteration_count is None else str(info.iteration_count),
        "pending requests": unknown if info.pending_requests is None else str(info.pending_requests),
        "size": _size_text(info),
        "encryption key": "-" if info.key_id is None else shown(info.key_id),
    }
    for what, value in rows.items():
        table.add_row(what, value)
    out.print(table)
    if not info.details:
        say(
            f"sealed with key {info.key_id!r}: set REDIS_CHAT_STORE_KEYS with that key to read the fields inside it",
            stderr=True,
        )


# -- checkpoints delete / prune / sweep ---------------------------------------------------------


@checkpoints_app.command("delete")
def delete_checkpoints(
    ctx: typer.Context,
    checkpoint_ids: Annotated[list[str], typer.Argument(help="Checkpoints to delete.", show_default=False)],
    dry_run: DryRun = False,
    yes: Yes = False,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Delete checkpoints by id (all named checkpoints must exist).

    Lists them and asks first (--yes: do not ask; needed when not on a terminal).
    --dry-run lists them and deletes nothing.
    """
    asking = must_ask("checkpoints delete deletes checkpoints", yes=yes, dry_run=dry_run)
    target = resolve_target(ctx)
    wanted = list(dict.fromkeys(checkpoint_ids))

    async def work(storage: RedisCheckpointStorage) -> int | None:
        found = [await storage.checkpoint_info(checkpoint_id, details=False) for checkpoint_id in wanted]
        unknown = [checkpoint_id for checkpoint_id, info in zip(wanted, found, strict=True) if info is None]
        if unknown:
            fail(f"unknown checkpoint id(s) under {storage.key_prefix!r}: {_ids_text(unknown)}; nothing deleted")
        infos = [info for info in found if info is not None]
        title = f"{len(infos)} checkpoint(s) under {target.describe()}"
        if dry_run and as_json:
            emit_json({"dry_run": True, "checkpoints": [info.to_dict() for info in infos]})
            return None
        if dry_run:
            say(f"Would delete {title}:")
            _print_checkpoints(None, infos, datetime.now(UTC))
            out.print("nothing deleted (--dry-run)")
            return None
        if asking:
            say(f"About to delete {title}:", stderr=True)
            _print_checkpoints(None, infos, datetime.now(UTC), err)
            ask(f"Delete these {len(infos)} checkpoint(s)?")
        return sum([await storage.delete(checkpoint_id) for checkpoint_id in wanted])

    deleted = _run_on(ctx, _storage, work)
    if deleted is None:
        return
    if as_json:
        emit_json({"deleted": deleted})
    else:
        out.print(f"deleted {deleted} checkpoint(s)")


@checkpoints_app.command("prune")
def prune_checkpoints(
    ctx: typer.Context,
    workflow: Workflow,
    keep: Annotated[int, typer.Option("--keep", min=0, help="How many of the newest checkpoints to keep.")],
    dry_run: DryRun = False,
    yes: Yes = False,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Delete a workflow's checkpoints but the newest --keep (in one atomic step).

    Counts them and asks first (--yes: do not ask; needed when not on a terminal).
    --dry-run lists what would be deleted.
    """
    asking = must_ask("checkpoints prune deletes checkpoints", yes=yes, dry_run=dry_run)
    target = resolve_target(ctx)

    async def work(storage: RedisCheckpointStorage) -> list[str]:
        if asking:
            preview = await storage.prune(workflow, keep, dry_run=True)
            if not preview:
                return []  # nothing to delete, nothing to ask
            ask(
                f"Delete the {len(preview)} oldest checkpoint(s) of workflow {workflow!r} under "
                f"{target.describe()}, keeping the newest {keep}?"
            )
        return await storage.prune(workflow, keep, dry_run=dry_run)

    pruned = _run_on(ctx, _storage, work)
    if as_json:
        emit_json({"workflow_name": workflow, "keep": keep, "dry_run": dry_run, "deleted": pruned})
        return
    say(
        f"{'would delete' if dry_run else 'deleted'} {len(pruned)} checkpoint(s) of workflow {workflow!r}, "
        f"keeping the newest {keep}"
    )
    for checkpoint_id in pruned[:_LISTED]:
        say(f"  {checkpoint_id}")
    if len(pruned) > _LISTED:
        out.print(f"  ... and {len(pruned) - _LISTED} more (--json lists them all)")


@checkpoints_app.command("sweep")
def sweep_index(
    ctx: typer.Context,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """Remove the checkpoint index's entries whose checkpoint is gone (its workflow expired by TTL).

    Deletes no checkpoint: only index entries that lead nowhere. Safe while the application runs
    on standalone Redis; on a Cluster run it when no workflow is saving.
    """

    async def work(storage: RedisCheckpointStorage) -> list[str]:
        return await storage.sweep_index(dry_run=dry_run)

    removed = _run_on(ctx, _storage, work)
    if as_json:
        emit_json({"dry_run": dry_run, "removed": removed})
        return
    say(
        f"{'would remove' if dry_run else 'removed'} {len(removed)} stale index "
        f"entr{'y' if len(removed) == 1 else 'ies'}"
    )
    if removed:
        say(f"  {_ids_text(removed)}")


@checkpoints_app.command("stats")
def checkpoint_stats(
    ctx: typer.Context,
    as_json: AsJson = False,
    redis_url: RedisUrl = None,
    key_prefix: KeyPrefix = None,
    cluster: Cluster = None,
) -> None:
    """How many workflows and checkpoints the key prefix holds."""

    async def work(storage: RedisCheckpointStorage) -> dict[str, Any]:
        return (await storage.stats()).to_dict()

    result = _run_on(ctx, _storage, work)
    if as_json:
        emit_json(result)
        return
    stale = result["index_entries"] - result["checkpoints"]
    say(
        f"{result['workflows']} workflow(s), {result['checkpoints']} checkpoint(s) under {result['key_prefix']!r}"
        + (f"; {stale} stale index entr{'y' if stale == 1 else 'ies'} ('checkpoints sweep')" if stale > 0 else "")
    )


def register(app: typer.Typer) -> None:
    """Add ``checkpoints`` to the ``redis-chat-store`` app."""
    app.add_typer(checkpoints_app, name="checkpoints")
