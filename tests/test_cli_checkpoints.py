"""``redis-chat-store checkpoints ...`` against a real redis-server, in both generations.

Most command lines run in this process (``cli_here``); the confirmation and the exit codes an
operator meets are checked as real subprocesses, on a terminal where a question is asked.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from agent_framework_redis_store import AESGCMEncryption, Keyspace, RedisCheckpointStorage

from .test_checkpoints import CURRENT, make_checkpoint
from .test_cli_threads import UNREACHABLE, cli, cli_here, cli_json, cli_on_terminal, one_line_error

KEY = b"k" * 32
KEYS_ENV = {"REDIS_CHAT_STORE_KEYS": f"k1:{base64.b64encode(KEY).decode()}"}
HOSTILE = "[red]x\x1b[2J\n"  # markup, a screen-clearing escape and a forged line


def save(url: str, workflow: str, count: int, *, prefix: str = "chat_messages", **options: Any) -> list[str]:
    """``count`` checkpoints of ``workflow``, one a second into 2025, each naming the one before (1.x)."""

    async def main() -> list[str]:
        ids: list[str] = []
        async with RedisCheckpointStorage(url, key_prefix=prefix, **options) as storage:
            for second in range(count):
                fields: dict[str, Any] = {"iteration_count": second}
                if CURRENT and ids:
                    fields["previous_checkpoint_id"] = ids[-1]
                ids.append(await storage.save(make_checkpoint(workflow, second=second, **fields)))
        return ids

    return asyncio.run(main())


def ids_of(url: str, workflow: str) -> list[str]:
    async def main() -> list[str]:
        async with RedisCheckpointStorage(url) as storage:
            return await storage.list_checkpoint_ids(workflow_name=workflow)

    return asyncio.run(main())


@pytest.fixture
def saved(redis_url: str) -> dict[str, list[str]]:
    return {"refund": save(redis_url, "refund", 5), "audit": save(redis_url, "audit", 2)}


# -- list and show -------------------------------------------------------------------------------


def test_list_shows_the_workflows_then_one_workflow_newest_first_in_pages(
    redis_url: str, saved: dict[str, list[str]]
) -> None:
    listed = cli_json(redis_url, "checkpoints", "list")
    assert [(w["workflow_name"], w["checkpoints"], w["latest_checkpoint_id"]) for w in listed["workflows"]] == [
        ("audit", 2, saved["audit"][-1]),
        ("refund", 5, saved["refund"][-1]),
    ]
    assert listed["workflows"][1]["latest_saved_at"] == "2025-01-01T00:00:04+00:00"
    assert listed["next_cursor"] is None
    paged = cli_json(redis_url, "checkpoints", "list", "--limit", "1")
    assert ([w["workflow_name"] for w in paged["workflows"]], paged["next_cursor"]) == (["audit"], "audit")
    rest = cli_json(redis_url, "checkpoints", "list", "--limit", "1", "--cursor", "audit")
    assert ([w["workflow_name"] for w in rest["workflows"]], rest["next_cursor"]) == (["refund"], None)

    first = cli_json(redis_url, "checkpoints", "list", "--workflow", "refund", "--limit", "3")
    assert [c["checkpoint_id"] for c in first["checkpoints"]] == saved["refund"][:1:-1]
    assert all(c["size_bytes"] > 0 and c["workflow_name"] == "refund" for c in first["checkpoints"])
    second = cli_json(
        redis_url, "checkpoints", "list", "-w", "refund", "--limit", "3", "--cursor", first["next_cursor"]
    )
    assert ([c["checkpoint_id"] for c in second["checkpoints"]], second["next_cursor"]) == (
        saved["refund"][1::-1],
        None,
    )

    text = cli_here(redis_url, "checkpoints", "list", "--workflow", "refund", "--limit", "3")
    assert text.returncode == 0, text.stderr
    assert text.stdout.index(saved["refund"][4]) < text.stdout.index(saved["refund"][2])
    assert saved["refund"][1] not in text.stdout
    assert f"more checkpoints: --cursor {first['next_cursor']}" in text.stderr
    assert cli_json(redis_url, "checkpoints", "list", "-w", "nothing")["checkpoints"] == []


def test_show_prints_the_metadata_without_restoring_the_checkpoint(redis_url: str, saved: dict[str, list[str]]) -> None:
    newest = saved["refund"][-1]
    shown = cli_json(redis_url, "checkpoints", "show", newest)
    assert shown["checkpoint_id"] == newest
    assert (shown["workflow_name"], shown["saved_at"], shown["iteration_count"]) == (
        "refund",
        "2025-01-01T00:00:04+00:00",
        4,
    )
    assert shown["previous_checkpoint_id"] == (saved["refund"][-2] if CURRENT else None)
    assert (shown["details"], shown["key_id"], shown["pending_requests"]) == (True, None, 0)
    text = cli_here(redis_url, "checkpoints", "show", newest)
    assert text.returncode == 0, text.stderr
    assert "refund" in text.stdout
    assert "iteration" in text.stdout

    unknown = cli_here(redis_url, "checkpoints", "show", "no-such-id")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: unknown checkpoint id under 'chat_messages': 'no-such-id'"


def test_show_of_a_sealed_checkpoint_reads_inside_only_with_the_keys(redis_url: str) -> None:
    (checkpoint_id,) = save(redis_url, "refund", 1, encryption=AESGCMEncryption({"k1": KEY}, current="k1"))
    keyless = cli_here(redis_url, "checkpoints", "show", checkpoint_id)
    assert keyless.returncode == 0, keyless.stderr
    assert "sealed with key 'k1': set REDIS_CHAT_STORE_KEYS" in keyless.stderr
    assert cli_json(redis_url, "checkpoints", "show", checkpoint_id)["details"] is False
    keyed = cli_json(redis_url, "checkpoints", "show", checkpoint_id, env=KEYS_ENV)
    assert (keyed["details"], keyed["key_id"], keyed["iteration_count"]) == (True, "k1", 0)


def test_hostile_workflow_names_and_ids_print_literally(redis_url: str) -> None:
    async def main() -> str:
        async with RedisCheckpointStorage(redis_url) as storage:
            return await storage.save(make_checkpoint(HOSTILE, checkpoint_id=f"id {HOSTILE}"))

    checkpoint_id = asyncio.run(main())
    escaped = "[red]x\\x1b[2J\\n"
    for args in (["list"], ["list", "--workflow", HOSTILE], ["show", checkpoint_id]):
        done = cli_here(redis_url, "checkpoints", *args)
        assert done.returncode == 0, done.stderr
        assert escaped in done.stdout
        assert "\x1b" not in done.stdout
    assert cli_json(redis_url, "checkpoints", "show", checkpoint_id)["workflow_name"] == HOSTILE
    deleted = cli_here(redis_url, "checkpoints", "delete", checkpoint_id, "--dry-run")
    assert f"id {escaped}" in deleted.stdout


# -- delete and prune ----------------------------------------------------------------------------


def test_delete_needs_every_checkpoint_to_exist_and_a_dry_run_deletes_nothing(
    redis_url: str, saved: dict[str, list[str]]
) -> None:
    refund, audit = saved["refund"], saved["audit"]
    missing = cli_here(redis_url, "checkpoints", "delete", refund[0], "nope", "--yes")
    assert one_line_error(missing) == "error: unknown checkpoint id(s) under 'chat_messages': 'nope'; nothing deleted"
    dry = cli_here(redis_url, "checkpoints", "delete", refund[0], audit[0], "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would delete 2 checkpoint(s) under key prefix 'chat_messages'" in dry.stdout
    assert "nothing deleted (--dry-run)" in dry.stdout
    dry_json = cli_json(redis_url, "checkpoints", "delete", refund[0], "--dry-run")
    assert [c["checkpoint_id"] for c in dry_json["checkpoints"]] == [refund[0]]
    assert ids_of(redis_url, "refund") == refund
    assert cli_json(redis_url, "checkpoints", "delete", refund[0], audit[0], "--yes") == {"deleted": 2}
    assert ids_of(redis_url, "refund") == refund[1:]
    assert ids_of(redis_url, "audit") == audit[1:]


def test_prune_keeps_the_newest_and_a_dry_run_lists_what_it_would_delete(
    redis_url: str, saved: dict[str, list[str]]
) -> None:
    refund = saved["refund"]
    dry = cli_json(redis_url, "checkpoints", "prune", "--workflow", "refund", "--keep", "2", "--dry-run")
    assert dry == {"workflow_name": "refund", "keep": 2, "dry_run": True, "deleted": refund[:3]}
    assert ids_of(redis_url, "refund") == refund
    done = cli_here(redis_url, "checkpoints", "prune", "--workflow", "refund", "--keep", "2", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 3 checkpoint(s) of workflow 'refund', keeping the newest 2\n")
    assert ids_of(redis_url, "refund") == refund[3:]
    assert ids_of(redis_url, "audit") == saved["audit"]
    again = cli_json(redis_url, "checkpoints", "prune", "-w", "refund", "--keep", "2", "--yes")
    assert again["deleted"] == []
    assert cli_here(redis_url, "checkpoints", "prune", "-w", "refund", "--keep", "-1", "--yes").returncode == 2
    assert cli_here(redis_url, "checkpoints", "prune", "--keep", "1", "--yes").returncode == 2  # no --workflow


def test_destructive_commands_ask_on_a_terminal_and_refuse_without_one(
    redis_url: str, saved: dict[str, list[str]]
) -> None:
    refund = saved["refund"]
    for command in (["delete", refund[0]], ["prune", "--workflow", "refund", "--keep", "1"]):
        refused = cli_here(redis_url, "checkpoints", *command)  # stdin is no terminal
        named = f"checkpoints {command[0]} deletes checkpoints"
        assert one_line_error(refused) == (
            f"error: {named}: pass --yes to confirm, there is no terminal to ask on (--dry-run shows what would change)"
        )
        # Refused before connecting: no Redis needed to learn that --yes is missing.
        assert "--yes" in one_line_error(cli_here(UNREACHABLE, "checkpoints", *command))
    declined = cli_on_terminal(redis_url, "checkpoints", "delete", refund[0], answer="n")
    assert (declined.asked, declined.returncode, declined.stdout) == (True, 1, ""), declined.screen
    assert "About to delete 1 checkpoint(s)" in declined.screen
    assert "Delete these 1 checkpoint(s)? [y/N]" in declined.screen
    assert declined.screen.rstrip().endswith("aborted: nothing was changed")
    assert ids_of(redis_url, "refund") == refund
    pruning = cli_on_terminal(redis_url, "checkpoints", "prune", "-w", "refund", "--keep", "1", answer="y")
    assert "Delete the 4 oldest checkpoint(s) of workflow 'refund' under key prefix 'chat_messages'" in pruning.screen
    assert (pruning.returncode, pruning.stdout.splitlines()[0]) == (
        0,
        "deleted 4 checkpoint(s) of workflow 'refund', keeping the newest 1",
    ), pruning.screen
    assert ids_of(redis_url, "refund") == refund[4:]
    nothing = cli_on_terminal(redis_url, "checkpoints", "prune", "-w", "refund", "--keep", "1")
    assert (nothing.asked, nothing.returncode) == (False, 0)  # nothing to delete: nothing to ask


# -- sweep, stats, errors -----------------------------------------------------------------------


def test_sweep_and_stats_report_and_remove_stale_index_entries(redis_url: str, saved: dict[str, list[str]]) -> None:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.delete(*Keyspace().workflow("audit").owned)  # as its TTL would
    assert cli_json(redis_url, "checkpoints", "stats") == {
        "key_prefix": "chat_messages",
        "workflows": 1,
        "checkpoints": 5,
        "index_entries": 7,
    }
    stats = cli_here(redis_url, "checkpoints", "stats")
    assert stats.stdout == (
        "1 workflow(s), 5 checkpoint(s) under 'chat_messages'; 2 stale index entries ('checkpoints sweep')\n"
    )
    dry = cli_json(redis_url, "checkpoints", "sweep", "--dry-run")
    assert sorted(dry["removed"]) == sorted(saved["audit"])
    assert cli_json(redis_url, "checkpoints", "stats")["index_entries"] == 7
    assert sorted(cli_json(redis_url, "checkpoints", "sweep")["removed"]) == sorted(saved["audit"])
    assert cli_json(redis_url, "checkpoints", "stats")["index_entries"] == 5
    assert ids_of(redis_url, "refund") == saved["refund"]


def test_errors_are_one_line_with_exit_status_1(redis_url: str) -> None:
    assert "no Redis to connect to" in one_line_error(cli_here(None, "checkpoints", "list"))
    bad_cursor = cli_here(redis_url, "checkpoints", "list", "--workflow", "refund", "--cursor", "garbage")
    assert "cursor 'garbage' is not one a page returned" in one_line_error(bad_cursor)
    wrong_keys = cli_here(redis_url, "checkpoints", "list", env={"REDIS_CHAT_STORE_KEYS": "not keys"})
    assert one_line_error(wrong_keys).startswith("error: ")
    out = cli(redis_url, "checkpoints", "list", "--json")  # a real process: the JSON on stdout parses
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"workflows": [], "next_cursor": None}


@pytest.mark.parametrize("width", [200, 60, 40])
def test_list_never_splits_a_checkpoint_id_or_a_workflow_name(redis_url: str, width: int) -> None:
    workflow = "refund-approval-for-order-1017"
    [checkpoint_id] = save(redis_url, workflow, 1)
    for listing in (["checkpoints", "list"], ["checkpoints", "list", "--workflow", workflow]):
        done = cli(redis_url, *listing, env={"COLUMNS": str(width)})
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        for whole in (workflow, checkpoint_id):
            assert any(whole in line for line in lines), f"{whole!r} is split at {width} columns:\n{done.stdout}"
        assert max(len(line.rstrip()) for line in lines) <= max(width, len(checkpoint_id) + 2), done.stdout
