"""``redis-chat-store threads ...`` and ``stats``, run as real subprocesses against a real redis-server."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from agent_framework_redis_store import RedisChatMessageStore, RedisThreadRegistry, ThreadRecord
from agent_framework_redis_store._cli.threads import parse_duration

from .scripted import user_message


def cli_env(url: str | None, color: bool = False, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The command's environment: ``REDIS_URL=url`` (unset for None), no colour, no model keys."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "REDIS_CLUSTER", "NO_COLOR", "FORCE_COLOR")
        and not k.startswith(("OPENAI_", "AZURE_OPENAI_"))
    }
    env.update({"COLUMNS": "200", "FORCE_COLOR" if color else "NO_COLOR": "1", **(extra or {})})
    if url is not None:
        env["REDIS_URL"] = url
    return env


def cli(
    url: str | None, *args: str, color: bool = False, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_framework_redis_store", *args],
        capture_output=True,
        text=True,
        env=cli_env(url, color, env),
        cwd=cwd,
        timeout=120,
        check=False,
    )


def cli_here(url: str | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``cli`` run in this process (typer's runner): the same command line, parsing and output,
    without a Python start-up per call, for tests that run many command lines."""
    from typer.testing import CliRunner

    from agent_framework_redis_store._cli.app import app

    environment: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    environment.update({"REDIS_URL": url, "REDIS_CLUSTER": None, "COLUMNS": "200", **(env or {})})
    result = CliRunner().invoke(app, list(args), env=environment, catch_exceptions=False)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


@dataclass
class TerminalRun:
    returncode: int
    stdout: str
    """The command's stdout (a file, not the terminal): its result."""
    screen: str
    """What the terminal showed: stderr (tables, the question, errors) and the echo of what was typed."""
    asked: bool
    """Whether the question ("... [y/N]") appeared."""


QUESTION = "[y/N]"
EOF_KEY = "\x04"  # Ctrl-D at the start of a line: end of input


def cli_on_terminal(url: str | None, *args: str, answer: str = "n", env: dict[str, str] | None = None) -> TerminalRun:
    """The command as an operator runs it: stdin and stderr on a pseudo-terminal, stdout to a file.

    ``answer`` (then Enter, except for EOF_KEY) is typed once the question is on the screen:
    no timing involved, the command waits for it.
    """
    primary, secondary = pty.openpty()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_framework_redis_store", *args],
            stdin=secondary,
            stdout=stdout,
            stderr=secondary,
            env=cli_env(url, False, env),
        )
        os.close(secondary)  # the command holds the only copy: reading ends when it exits
        screen, asked = b"", False
        deadline = time.monotonic() + 120
        try:
            while True:
                ready, _, _ = select.select([primary], [], [], max(0.0, deadline - time.monotonic()))
                assert ready, f"no end after 120 s; the screen so far: {screen!r}"
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # EIO: the command exited and closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
                if not asked and QUESTION.encode() in screen:
                    asked = True
                    os.write(primary, answer.encode() if answer == EOF_KEY else f"{answer}\n".encode())
        finally:
            os.close(primary)
            returncode = process.wait(timeout=120)
        stdout.seek(0)
        return TerminalRun(returncode, stdout.read(), screen.decode(errors="replace").replace("\r\n", "\n"), asked)


def cli_json(url: str | None, *args: str, env: dict[str, str] | None = None) -> Any:
    done = cli_here(url, *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def write_threads(url: str, threads: dict[str, dict[str, Any]], prefix: str = "chat_messages") -> None:
    """Threads as a user's agents would write them: ``{id: {"texts": [...], "labels":..., "ttl":...}}``."""

    async def main() -> None:
        for thread_id, spec in threads.items():
            async with RedisChatMessageStore(
                url, thread_id=thread_id, key_prefix=prefix, labels=spec.get("labels"), ttl=spec.get("ttl")
            ) as store:
                await store.add_messages([user_message(t) for t in spec["texts"]])

    asyncio.run(main())


def write_old_thread(url: str, thread_id: str, days: int, labels: dict[str, str] | None = None) -> None:
    """A thread last active ``days`` ago (written through import, which keeps timestamps)."""
    active = datetime.now(UTC) - timedelta(days=days)
    message = user_message(f"{thread_id} from {days} days ago").to_dict(exclude_none=True)
    record = ThreadRecord(thread_id, [message], labels or {}, active, active, None, None)

    async def main() -> None:
        async with RedisThreadRegistry(url) as registry:
            assert await registry.import_thread(record)

    asyncio.run(main())


def thread_ids(url: str, prefix: str = "chat_messages") -> list[str]:
    """What the registry lists, read in-process (to check what a command did)."""

    async def main() -> list[str]:
        async with RedisThreadRegistry(url, key_prefix=prefix) as registry:
            return [t.thread_id async for t in registry.iter_threads()]

    return asyncio.run(main())


def exported(url: str, prefix: str = "chat_messages") -> dict[str, ThreadRecord]:
    async def main() -> dict[str, ThreadRecord]:
        async with RedisThreadRegistry(url, key_prefix=prefix) as registry:
            return {t.thread_id: await registry.export_thread(t.thread_id) async for t in registry.iter_threads()}

    return asyncio.run(main())


def stored(url: str, prefix: str = "chat_messages") -> dict[str, ThreadRecord]:
    """Every thread as exported, less what changes by itself (the TTL left): to see that nothing changed."""
    return {thread_id: replace(record, ttl_remaining=None) for thread_id, record in exported(url, prefix).items()}


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def populated(redis_url: str) -> str:
    write_old_thread(redis_url, "alice-old", days=10, labels={"user": "alice"})
    write_threads(
        redis_url,
        {
            "alice-1": {"texts": ["hello", "how are you"], "labels": {"user": "alice"}, "ttl": 3600},
            "bob:1 {x}": {"texts": ["hi from bob"], "labels": {"user": "bob"}},
        },
    )
    return redis_url


# -- durations --------------------------------------------------------------------------------


def test_durations_are_parsed_and_bad_ones_name_the_accepted_forms() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("45s") == timedelta(seconds=45)
    for bad in ("30", "d", "1.5h", "-3d", "3w", "3 days", ""):
        with pytest.raises(ValueError, match=r"45s, 90m, 12h, 30d"):
            parse_duration(bad)


# -- list / stats ---------------------------------------------------------------------------------


def test_list_filters_pages_and_prints(populated: str) -> None:
    url = populated
    table = cli(url, "threads", "list")
    assert table.returncode == 0, table.stderr
    for expected in ("alice-1", "bob:1 {x}", "alice-old", "user=alice", "1h"):
        assert expected in table.stdout
    listed = cli_json(url, "threads", "list")
    assert [t["thread_id"] for t in listed["threads"]] == ["bob:1 {x}", "alice-1", "alice-old"]
    assert listed["threads"][1]["message_count"] == 2
    assert listed["threads"][1]["ttl"] == 3600
    assert listed["next_cursor"] is None
    recent = cli_json(url, "threads", "list", "--since", "7d", "--label", "user=alice")
    assert [t["thread_id"] for t in recent["threads"]] == ["alice-1"]
    first = cli_json(url, "threads", "list", "--limit", "1", "--label", "user=alice")
    assert [t["thread_id"] for t in first["threads"]] == ["alice-1"]
    rest = cli_json(url, "threads", "list", "--limit", "5", "--label", "user=alice", "--cursor", first["next_cursor"])
    assert [t["thread_id"] for t in rest["threads"]] == ["alice-old"]
    assert rest["next_cursor"] is None
    bad = cli(url, "threads", "list", "--label", "alice")
    assert bad.returncode == 2
    assert "KEY=VALUE" in bad.stderr


def test_stats_summarise_the_prefix(populated: str) -> None:
    stats = cli_json(populated, "stats")
    assert (stats["threads"], stats["messages"]) == (3, 4)
    assert stats["length_distribution"] == {"1": 2, "2-10": 1}
    assert stats["approximate_bytes"] > 0
    table = cli(populated, "stats")
    assert table.returncode == 0, table.stderr
    assert "threads of 2-10 message(s)" in table.stdout


def test_unreachable_redis_is_one_line_without_the_password() -> None:
    message = one_line_error(cli("redis://user:s3cret@127.0.0.1:1/0", "stats"))
    assert "unreachable" in message
    assert "s3cret" not in message


def test_group_options_and_missing_redis_url(populated: str, redis_url: str) -> None:
    write_threads(redis_url, {"other": {"texts": ["x"]}}, prefix="elsewhere")
    listed = cli(None, "threads", "--redis-url", redis_url, "--key-prefix", "elsewhere", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [t["thread_id"] for t in json.loads(listed.stdout)["threads"]] == ["other"]
    assert "--redis-url" in one_line_error(cli(None, "threads", "list"))


# -- --redis-url, --key-prefix and --cluster before the command, after it, or both -------------------------

UNREACHABLE = "redis://127.0.0.1:1/0"


def ran(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.args, done.stdout, done.stderr)
    return done.stdout


def test_every_command_takes_the_options_before_it(redis_url: str, tmp_path: Path) -> None:
    write_threads(redis_url, {"kept": {"texts": ["a", "b"]}, "doomed": {"texts": ["c"]}}, prefix="elsewhere")
    write_threads(redis_url, {"default": {"texts": ["not under elsewhere"]}})
    before = ("--redis-url", redis_url, "--key-prefix", "elsewhere")  # and no REDIS_URL in the environment

    listed = json.loads(ran(cli_here(None, *before, "threads", "list", "--json")))
    assert sorted(t["thread_id"] for t in listed["threads"]) == ["doomed", "kept"]
    shown = json.loads(ran(cli_here(None, *before, "threads", "show", "kept", "--json")))
    assert [m["contents"][0]["text"] for m in shown["messages"]] == ["a", "b"]
    stats = json.loads(ran(cli_here(None, *before, "stats", "--json")))
    assert (stats["key_prefix"], stats["threads"], stats["messages"]) == ("elsewhere", 2, 3)
    due = json.loads(ran(cli_here(None, *before, "threads", "compact", "--all", "--dry-run", "--json")))
    assert sorted(row["thread_id"] for row in due["threads"]) == ["doomed", "kept"]

    backup = tmp_path / "backup.jsonl"
    assert json.loads(ran(cli_here(None, *before, "threads", "export", "--all", "-o", str(backup), "--json"))) == {
        "exported": 2,
        "file": str(backup),
    }
    into_copy = ("--redis-url", redis_url, "--key-prefix", "copy")
    assert json.loads(ran(cli_here(None, *into_copy, "threads", "import", str(backup), "--json")))["imported"] == 2
    assert sorted(thread_ids(redis_url, "copy")) == ["doomed", "kept"]

    deleted = json.loads(ran(cli_here(None, *before, "threads", "delete", "doomed", "--yes", "--json")))
    assert (deleted["deleted"], deleted["thread_ids"], deleted["key_prefix"]) == (1, ["doomed"], "elsewhere")
    assert thread_ids(redis_url, "elsewhere") == ["kept"]
    purged = json.loads(ran(cli_here(None, *into_copy, "threads", "purge", "--older-than", "0s", "--yes", "--json")))
    assert purged["purged"] == 2
    assert thread_ids(redis_url, "copy") == []
    assert thread_ids(redis_url) == ["default"]  # the default prefix was never touched


def test_the_option_nearest_the_command_wins(redis_url: str) -> None:
    for prefix in ("p-global", "p-group", "p-command"):
        write_threads(redis_url, {f"in-{prefix}": {"texts": ["x"]}}, prefix=prefix)

    def listing(*args: str, url: str | None = None, env: dict[str, str] | None = None) -> list[str]:
        return [t["thread_id"] for t in json.loads(ran(cli_here(url, *args, "--json", env=env)))["threads"]]

    url = ("--redis-url", redis_url)
    assert listing(*url, "--key-prefix", "p-global", "threads", "list") == ["in-p-global"]
    assert listing(*url, "--key-prefix", "p-global", "threads", "--key-prefix", "p-group", "list") == ["in-p-group"]
    assert listing(
        *url, "--key-prefix", "p-global", "threads", "--key-prefix", "p-group", "list", "--key-prefix", "p-command"
    ) == ["in-p-command"]
    assert listing("--key-prefix", "p-global", "threads", "list", *url, "--key-prefix", "p-command") == ["in-p-command"]
    stats = json.loads(
        ran(cli_here(None, "--key-prefix", "p-global", "stats", *url, "--key-prefix", "p-group", "--json"))
    )
    assert stats["key_prefix"] == "p-group"

    # The URL: $REDIS_URL < before the command < after the group < after the command.
    group = ("--key-prefix", "p-group")
    assert listing("threads", "list", *group, url=redis_url) == ["in-p-group"]
    assert listing(*url, "threads", "list", *group, url=UNREACHABLE) == ["in-p-group"]
    assert listing("--redis-url", UNREACHABLE, "threads", *url, "list", *group) == ["in-p-group"]
    assert listing("--redis-url", UNREACHABLE, "threads", "--redis-url", UNREACHABLE, "list", *url, *group) == [
        "in-p-group"
    ]
    for nearest_is_unreachable in (
        ["--redis-url", UNREACHABLE, "threads", "list"],
        [*url, "threads", "list", "--redis-url", UNREACHABLE],
        [*url, "threads", "--redis-url", UNREACHABLE, "list"],
    ):
        assert "127.0.0.1:1/0 is unreachable" in one_line_error(cli_here(redis_url, *nearest_is_unreachable))

    # --cluster: $REDIS_CLUSTER < before < after; against a standalone Redis, one line, not a traceback.
    for cluster in (
        ["--cluster", "threads", "list"],
        ["threads", "list", "--cluster"],
        ["threads", "--cluster", "list"],
    ):
        assert "Cluster mode is not enabled" in one_line_error(cli_here(redis_url, *cluster))
    assert "Cluster mode is not enabled" in one_line_error(cli_here(redis_url, "stats", env={"REDIS_CLUSTER": "1"}))
    assert listing("--cluster", "threads", "list", "--no-cluster", *group, url=redis_url) == ["in-p-group"]
    assert listing("threads", "--no-cluster", "list", *group, url=redis_url, env={"REDIS_CLUSTER": "1"}) == [
        "in-p-group"
    ]


# -- show -------------------------------------------------------------------------------------------


def test_show_prints_a_coloured_transcript(populated: str) -> None:
    shown = cli(populated, "threads", "show", "alice-1", color=True)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b[1;36muser: \x1b[0mhello" in shown.stdout  # the role, in bold cyan
    assert "how are you" in shown.stdout
    assert "labels user=alice" in shown.stdout
    last = cli_json(populated, "threads", "show", "alice-1", "--last", "1")
    assert last["thread"]["message_count"] == 2
    assert last["thread"]["labels"] == {"user": "alice"}
    assert 0 < last["thread"]["ttl_remaining"] <= 3600
    assert [m["contents"][0]["text"] for m in last["messages"]] == ["how are you"]


def test_unknown_thread_exits_1_with_one_line(populated: str) -> None:
    assert "No thread 'nope'" in one_line_error(cli(populated, "threads", "show", "nope"))


# -- export / import -----------------------------------------------------------------------------


def lrange(url: str, key: str) -> list[bytes]:
    with redis.Redis.from_url(url) as client:
        return client.lrange(key, 0, -1)  # type: ignore[return-value]


def test_export_import_round_trip(populated: str, tmp_path: Path) -> None:
    url = populated
    everything = tmp_path / "all.jsonl"
    done = cli_json(url, "threads", "export", "--all", "-o", str(everything))
    assert done == {"exported": 3, "file": str(everything)}
    assert len(everything.read_text().splitlines()) == 3

    imported = cli_json(url, "threads", "--key-prefix", "restored", "import", str(everything))
    assert imported == {"imported": 3, "skipped": 0, "problems": []}
    originals, copies = exported(url), exported(url, "restored")
    assert sorted(copies) == sorted(originals) == ["alice-1", "alice-old", "bob:1 {x}"]
    for thread_id, original in originals.items():
        copy = copies[thread_id]
        assert copy.messages == original.messages
        assert (copy.labels, copy.created_at, copy.last_active, copy.ttl) == (
            original.labels,
            original.created_at,
            original.last_active,
            original.ttl,
        )
        if original.ttl_remaining is not None:
            assert copy.ttl_remaining is not None
            assert abs(copy.ttl_remaining - original.ttl_remaining) < 30
    assert lrange(url, "restored:{bob%3A1%20%7Bx%7D}") == lrange(url, "chat_messages:{bob%3A1%20%7Bx%7D}")

    again = cli(url, "threads", "import", str(everything))
    assert again.returncode == 1
    assert "already exists (use --replace)" in again.stderr
    assert "nothing was imported" in again.stderr

    one = tmp_path / "one.jsonl"
    assert cli_json(url, "threads", "export", "alice-1", "-o", str(one))["exported"] == 1
    assert json.loads(one.read_text())["thread_id"] == "alice-1"
    missing = one_line_error(cli(url, "threads", "export", "alice-1", "ghost", "-o", str(tmp_path / "no.jsonl")))
    assert "ghost" in missing
    assert not (tmp_path / "no.jsonl").exists()


def test_export_of_a_corrupt_entry_exits_1_naming_key_and_index(redis_url: str, tmp_path: Path) -> None:
    write_threads(redis_url, {"good": {"texts": ["fine"]}, "bad": {"texts": ["one", "two", "three"]}})
    with redis.Redis.from_url(redis_url) as client:
        client.lset("chat_messages:{bad}", 1, "\x00not json")
    for args in (["bad"], ["--all"]):
        target = tmp_path / "out.jsonl"
        line = one_line_error(cli(redis_url, "threads", "export", *args, "-o", str(target)))
        assert "'chat_messages:{bad}' at index 1" in line, line
        assert "Traceback" not in line
        assert not target.exists()  # no half-written export
        assert list(tmp_path.iterdir()) == []
    assert len(lrange(redis_url, "chat_messages:{bad}")) == 3


def test_import_names_bad_lines_and_imports_nothing_unless_skip_bad(redis_url: str, tmp_path: Path) -> None:
    good = ThreadRecord("good", [user_message("fine").to_dict(exclude_none=True)], {}, None, None, None, None)
    also_good = ThreadRecord("also-good", good.messages, {"k": "v"}, None, None, 600.0, None)
    file = tmp_path / "mixed.jsonl"
    file.write_text(
        "\n".join([good.to_json(), '{"thread_id": "t", "messages": [{"no": "role"}]}', also_good.to_json(), "{oops"])
        + "\n"
    )
    refused = cli(redis_url, "threads", "import", str(file))
    assert refused.returncode == 1
    assert f"{file}, line 2: messages[0] is not a message" in refused.stderr
    assert f"{file}, line 4: not JSON at column 2" in refused.stderr
    assert thread_ids(redis_url) == []  # nothing imported

    skipped = cli_json(redis_url, "threads", "import", str(file), "--skip-bad")
    assert (skipped["imported"], skipped["skipped"]) == (2, 2)
    records = exported(redis_url)
    assert sorted(records) == ["also-good", "good"]
    assert records["also-good"].ttl == 600
    assert records["also-good"].labels == {"k": "v"}


# -- delete / purge ---------------------------------------------------------------------------------


def test_delete_needs_every_thread_to_exist(populated: str) -> None:
    for dry_or_yes in ("--dry-run", "--yes"):
        refused = one_line_error(cli(populated, "threads", "delete", "alice-1", "ghost", dry_or_yes))
        assert "ghost" in refused
        assert "nothing deleted" in refused
    assert len(thread_ids(populated)) == 3
    assert cli_json(populated, "threads", "delete", "alice-1", "bob:1 {x}", "--yes")["deleted"] == 2
    assert thread_ids(populated) == ["alice-old"]


def test_delete_dry_run_lists_the_threads_and_their_messages(populated: str) -> None:
    listed = cli(populated, "threads", "delete", "alice-1", "bob:1 {x}", "--dry-run")  # no --yes, no terminal
    assert listed.returncode == 0, listed.stderr
    assert f"Would delete 2 thread(s), 3 message(s), under key prefix 'chat_messages' at {populated}" in listed.stdout
    rows = [[cell.strip() for cell in line.split("│")[1:3]] for line in listed.stdout.splitlines() if "│" in line]
    assert rows == [["alice-1", "2"], ["bob:1 {x}", "1"]]  # thread, messages
    assert listed.stdout.strip().endswith("nothing deleted (--dry-run)")
    as_json = cli_json(populated, "threads", "delete", "alice-1", "bob:1 {x}", "alice-1", "--dry-run")
    assert as_json["dry_run"] is True
    assert [(t["thread_id"], t["message_count"]) for t in as_json["threads"]] == [("alice-1", 2), ("bob:1 {x}", 1)]
    assert len(thread_ids(populated)) == 3


def test_delete_asks_on_a_terminal_and_deletes_only_on_yes(populated: str) -> None:
    for no in ("n", "no", "", "whatever", EOF_KEY):
        declined = cli_on_terminal(populated, "threads", "delete", "alice-1", "bob:1 {x}", answer=no)
        assert declined.asked, declined.screen
        assert declined.returncode == 1, declined.screen
        assert declined.screen.rstrip().endswith("aborted: nothing was changed")
        assert declined.stdout == ""
        assert len(thread_ids(populated)) == 3
    # What it is about to delete, then the question.
    assert "About to delete 2 thread(s), 3 message(s), under key prefix 'chat_messages' at" in declined.screen
    assert "alice-1" in declined.screen
    assert "Delete these 2 thread(s)? [y/N]" in declined.screen

    accepted = cli_on_terminal(populated, "threads", "delete", "alice-1", "bob:1 {x}", answer="y")
    assert (accepted.asked, accepted.returncode) == (True, 0), accepted.screen
    assert accepted.stdout == "deleted 2 thread(s)\n"
    assert thread_ids(populated) == ["alice-old"]
    on_json = cli_on_terminal(populated, "threads", "delete", "alice-old", "--json", answer="YES")
    assert (on_json.asked, on_json.returncode) == (True, 0), on_json.screen
    # The question went to the terminal, not to stdout.
    assert json.loads(on_json.stdout)["thread_ids"] == ["alice-old"]
    assert thread_ids(populated) == []


def test_yes_deletes_without_asking_even_on_a_terminal(populated: str) -> None:
    done = cli_on_terminal(populated, "threads", "delete", "alice-1", "-y")
    assert (done.asked, done.returncode, done.stdout) == (False, 0, "deleted 1 thread(s)\n")
    assert sorted(thread_ids(populated)) == ["alice-old", "bob:1 {x}"]


def test_without_a_terminal_destructive_commands_need_yes(populated: str, tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    assert cli_json(populated, "threads", "export", "--all", "-o", str(backup))["exported"] == 3
    before = stored(populated)
    for command, named in (
        (["threads", "delete", "alice-1"], "threads delete deletes threads"),
        (["threads", "purge", "--older-than", "7d"], "threads purge deletes threads"),
        (["threads", "import", str(backup), "--replace"], "threads import --replace overwrites threads"),
    ):
        # "y" on stdin is no answer: only a terminal can confirm.
        refused = subprocess.run(
            [sys.executable, "-m", "agent_framework_redis_store", *command],
            input="y\n",
            capture_output=True,
            text=True,
            env=cli_env(populated),
            timeout=120,
            check=False,
        )
        assert one_line_error(refused) == (
            f"error: {named}: pass --yes to confirm, there is no terminal to ask on (--dry-run shows what would change)"
        )
        assert refused.stdout == ""
    # A terminal on stdin is not enough: the question must be seen, and stderr is not the terminal.
    primary, secondary = pty.openpty()
    try:
        unseen = subprocess.run(
            [sys.executable, "-m", "agent_framework_redis_store", "threads", "delete", "alice-1"],
            stdin=secondary,
            capture_output=True,
            text=True,
            env=cli_env(populated),
            timeout=120,
            check=False,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert "pass --yes to confirm" in one_line_error(unseen)
    assert stored(populated) == before
    # Refused before connecting: no Redis needed to learn that --yes is missing.
    assert "--yes" in one_line_error(cli(UNREACHABLE, "threads", "delete", "alice-1"))


def test_purge_older_than(populated: str) -> None:
    bad = cli(populated, "threads", "purge", "--older-than", "30days")
    assert bad.returncode == 2
    assert "45s, 90m, 12h, 30d" in bad.stderr
    dry = cli_json(populated, "threads", "purge", "--older-than", "7d", "--dry-run")
    assert (dry["purged"], dry["dry_run"]) == (1, True)
    assert len(thread_ids(populated)) == 3
    done = cli(populated, "threads", "purge", "--older-than", "7d", "--yes")
    assert done.returncode == 0, done.stderr
    assert "deleted 1 thread(s)" in done.stdout
    assert sorted(thread_ids(populated)) == ["alice-1", "bob:1 {x}"]


def test_purge_counts_and_asks_on_a_terminal(populated: str) -> None:
    declined = cli_on_terminal(populated, "threads", "purge", "--older-than", "7d", answer="n")
    assert (declined.asked, declined.returncode) == (True, 1), declined.screen
    assert (
        f"Delete 1 thread(s) under key prefix 'chat_messages' at {populated} inactive for longer than 7d (since "
    ) in declined.screen
    assert "and remove 0 expired entries? [y/N]" in declined.screen
    assert len(thread_ids(populated)) == 3

    accepted = cli_on_terminal(populated, "threads", "purge", "--older-than", "7d", answer="y")
    assert (accepted.asked, accepted.returncode) == (True, 0), accepted.screen
    assert accepted.stdout.startswith("deleted 1 thread(s) inactive since ")
    assert sorted(thread_ids(populated)) == ["alice-1", "bob:1 {x}"]

    # Nothing left to delete: nothing to ask.
    idle = cli_on_terminal(populated, "threads", "purge", "--older-than", "7d", "--json", answer="n")
    assert (idle.asked, idle.returncode) == (False, 0), idle.screen
    assert {k: v for k, v in json.loads(idle.stdout).items() if k not in ("cutoff", "started_at", "finished_at")} == {
        "key_prefix": "chat_messages",
        "dry_run": False,
        "purged": 0,
        "expired": 0,
        "kept": 0,
        "damaged": [],
        "thread_ids": [],
    }


# -- erase / reindex / fork -------------------------------------------------------------------


def keys_naming(url: str, text: str) -> list[str]:
    with redis.Redis.from_url(url) as client:
        names = [key.decode() if isinstance(key, bytes) else key for key in client.keys("*")]
    return sorted(name for name in names if text in name)


def test_erase_a_users_threads_with_a_receipt(populated: str) -> None:
    dry = cli_json(populated, "threads", "erase", "--label", "user=alice", "--dry-run")
    assert (dry["dry_run"], sorted(dry["thread_ids"]), dry["messages_deleted"]) == (True, ["alice-1", "alice-old"], 3)
    assert len(thread_ids(populated)) == 3
    refused = cli(populated, "threads", "erase", "--label", "user=alice")
    assert "threads erase deletes threads: pass --yes" in one_line_error(refused)
    assert "KEY=VALUE" in cli(populated, "threads", "erase", "--label", "alice", "--yes").stderr

    declined = cli_on_terminal(populated, "threads", "erase", "--label", "user=alice", answer="n")
    assert (declined.asked, declined.returncode) == (True, 1), declined.screen
    assert (
        f"Erase 2 thread(s) (3 message(s)) carrying user=alice under key prefix 'chat_messages' at {populated}? [y/N]"
    ) in declined.screen
    assert len(thread_ids(populated)) == 3

    accepted = cli_on_terminal(populated, "threads", "erase", "--label", "user=alice", answer="y")
    assert (accepted.asked, accepted.returncode) == (True, 0), accepted.screen
    lines = accepted.stdout.splitlines()
    assert lines[0].startswith("erased 2 thread(s) carrying user=alice (")
    assert sorted(line.strip() for line in lines[1:]) == ["alice-1", "alice-old"]
    assert thread_ids(populated) == ["bob:1 {x}"]
    assert keys_naming(populated, "alice-") == []  # no key of theirs is left: messages, meta, indexes
    assert exported(populated)["bob:1 {x}"].messages[0]["contents"][0]["text"] == "hi from bob"

    # Run again: nothing is left, and the receipt says so (without asking).
    again = cli_on_terminal(populated, "threads", "erase", "-l", "user=alice", "--json", answer="n")
    assert (again.asked, again.returncode) == (False, 0), again.screen
    receipt = json.loads(again.stdout)
    assert (receipt["thread_ids"], receipt["complete"], receipt["key_prefix"]) == ([], True, "chat_messages")


def test_reindex_indexes_threads_written_before_label_indexes(redis_url: str) -> None:
    write_threads(
        redis_url, {f"t{n}": {"texts": ["x"], "labels": {"user": "ann" if n % 2 else "cy"}} for n in range(5)}
    )
    with redis.Redis.from_url(redis_url) as client:
        # What 0.1 left behind: threads and a registry, no label index.
        client.delete(*client.keys("chat_messages:label*"))
    walked = cli_json(redis_url, "threads", "list", "--label", "user=ann")  # without the index: the registry walk
    assert sorted(t["thread_id"] for t in walked["threads"]) == ["t1", "t3"]
    assert cli_json(redis_url, "threads", "reindex") == {"key_prefix": "chat_messages", "threads": 5}
    with redis.Redis.from_url(redis_url) as client:
        assert client.exists("chat_messages:label-index")
        assert sorted(client.zrange("chat_messages:label:user=ann", 0, -1)) == [b"t1", b"t3"]
    listed = cli_json(redis_url, "threads", "list", "--label", "user=ann")
    assert sorted(t["thread_id"] for t in listed["threads"]) == ["t1", "t3"]
    done = cli(redis_url, "threads", "reindex")
    assert (done.returncode, done.stdout) == (0, "indexed the labels of 5 thread(s) under 'chat_messages'\n")


def test_fork_copies_a_thread_into_a_new_one(populated: str) -> None:
    forked = cli_json(populated, "threads", "fork", "alice-1", "--new-id", "alice-2", "--upto", "1")
    assert (forked["thread_id"], forked["message_count"], forked["forked_from"]) == ("alice-2", 1, "alice-1")
    assert forked["labels"] == {"user": "alice"}
    records = exported(populated)
    assert [m["contents"][0]["text"] for m in records["alice-2"].messages] == ["hello"]
    assert len(records["alice-1"].messages) == 2  # the source is untouched
    generated = cli(populated, "threads", "fork", "alice-1")
    assert generated.returncode == 0, generated.stderr
    new_id = generated.stdout.strip()
    assert new_id in thread_ids(populated)
    assert f"forked 'alice-1' into {new_id!r} (2 message(s))" in generated.stderr
    assert "alice-2" in one_line_error(cli(populated, "threads", "fork", "bob:1 {x}", "--new-id", "alice-2"))
    assert "ghost" in one_line_error(cli(populated, "threads", "fork", "ghost"))
    assert cli(populated, "threads", "fork", "alice-1", "--upto", "0").returncode == 2


def test_import_replace_asks_on_a_terminal_and_dry_run_counts(populated: str, tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    assert cli_json(populated, "threads", "export", "alice-1", "-o", str(backup))["exported"] == 1
    write_threads(populated, {"alice-1": {"texts": ["written after the backup"]}})
    other = tmp_path / "new.jsonl"
    other.write_text(
        ThreadRecord("fresh", [user_message("new").to_dict(exclude_none=True)], {}, None, None, None, None).to_json()
        + "\n"
        + backup.read_text()
    )

    dry = cli_json(populated, "threads", "import", str(other), "--replace", "--dry-run")
    assert dry == {"dry_run": True, "new": 1, "replacing": 1, "skipped": 0, "problems": []}
    dry_text = cli(populated, "threads", "import", str(other), "--replace", "--dry-run")
    assert (
        dry_text.stderr.strip()
        == "would import 2 thread(s) (1 replacing existing ones), skip 0; nothing imported (--dry-run)"
    )
    assert exported(populated)["alice-1"].messages[-1]["contents"][0]["text"] == "written after the backup"
    assert "fresh" not in thread_ids(populated)

    declined = cli_on_terminal(populated, "threads", "import", str(other), "--replace", answer="n")
    assert (declined.asked, declined.returncode) == (True, 1), declined.screen
    assert "replaces 'alice-1'" in declined.screen
    assert (
        f"Replace 1 existing thread(s) under key prefix 'chat_messages' at {populated} "
        f"with their copies in {other}? [y/N]"
    ) in declined.screen
    assert len(exported(populated)["alice-1"].messages) == 3
    assert "fresh" not in thread_ids(populated)

    accepted = cli_on_terminal(populated, "threads", "import", str(other), "--replace", answer="y")
    assert (accepted.asked, accepted.returncode) == (True, 0), accepted.screen
    assert "imported 2 thread(s), skipped 0" in accepted.screen
    assert len(exported(populated)["alice-1"].messages) == 2
    assert "fresh" in thread_ids(populated)

    # --replace that replaces nothing asks nothing.
    elsewhere = cli_on_terminal(populated, "threads", "--key-prefix", "empty", "import", str(other), "--replace")
    assert (elsewhere.asked, elsewhere.returncode) == (False, 0), elsewhere.screen
    assert sorted(thread_ids(populated, "empty")) == ["alice-1", "fresh"]


# -- compact, and show with a summary -------------------------------------------------------------------


def test_compact_summarizes_long_threads_and_show_marks_the_summary(redis_url: str) -> None:
    texts = [f"Turn {n}: my name is Carol and I love tea." if n == 0 else f"Turn {n}: how are you?" for n in range(8)]
    write_threads(redis_url, {"long": {"texts": texts}, "short": {"texts": ["hi"]}})

    dry = cli_json(redis_url, "threads", "compact", "--all", "--dry-run", "--trigger-messages", "5", "--keep-last", "2")
    assert {row["thread_id"]: row["due"] for row in dry["threads"]} == {"long": True, "short": False}
    assert thread_ids(redis_url) == ["short", "long"]  # a dry run changes nothing
    assert "summary" not in cli(redis_url, "threads", "show", "long").stdout

    done = cli_json(redis_url, "threads", "compact", "long", "short", "--offline", "--trigger-messages", "5",
                    "--keep-last", "2")  # fmt: skip
    results = {row["thread_id"]: row for row in done["threads"]}
    assert results["long"]["compacted"] is True
    assert results["long"]["summarized"] == 6
    assert results["short"]["reason"] == "not due"

    shown = cli(redis_url, "threads", "show", "long")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "summary of the first 6 stored message(s):" in lines
    assert any("Earlier the user said: Turn 0: my name is Carol and I love tea." in line for line in lines)
    marker = lines.index("--- the model sees the summary, then the messages from here on ---")
    assert lines[marker + 1] == "user: Turn 6: how are you?"
    assert "user: Turn 0: my name is Carol and I love tea." in lines  # the transcript is whole
    as_json = cli_json(redis_url, "threads", "show", "long")
    assert as_json["thread"]["summary_boundary"] == 6
    assert as_json["summary"]["contents"][0]["text"].startswith("Summary of the earlier conversation:")
    assert len(as_json["messages"]) == 8


def test_compact_with_keep_last_0_summarizes_every_message(redis_url: str) -> None:
    texts = [f"Turn {n}: how are you?" for n in range(7)] + ["Turn 7: my name is Carol and I love tea."]
    write_threads(redis_url, {"long": {"texts": texts}})
    done = cli(redis_url, "threads", "compact", "long", "--offline", "--trigger-messages", "5", "--keep-last", "0")
    assert done.returncode == 0, done.stderr
    assert "long: summarized 8 message(s)" in done.stdout
    shown = cli_json(redis_url, "threads", "show", "long")
    assert shown["thread"]["summary_boundary"] == 8
    assert "Turn 7: my name is Carol" in shown["summary"]["contents"][0]["text"]  # the newest message too
    assert len(shown["messages"]) == 8  # the transcript is whole


def test_a_failing_summarizer_is_reported_per_thread_and_exits_1(redis_url: str, tmp_path: Path) -> None:
    from .openai_stub import OpenAIStub

    write_threads(redis_url, {"long": {"texts": [f"t{n}" for n in range(8)]}, "short": {"texts": ["hi"]}})
    with OpenAIStub() as stub:  # it rejects this key: the model's API fails, Redis is fine
        env = {"OPENAI_API_KEY": "sk-wrong", "OPENAI_BASE_URL": stub.base_url}
        done = cli(
            redis_url,
            "threads",
            "compact",
            "--all",
            "--trigger-messages",
            "5",
            "--keep-last",
            "2",
            cwd=tmp_path,
            env=env,
        )
    assert done.returncode == 1
    assert "long: the summarizer failed (" in done.stdout
    assert "short: not due" in done.stdout
    assert done.stderr.strip() == "error: the summarizer failed for 1 thread(s): long"
    assert "Traceback" not in done.stderr
    assert "sk-wrong" not in done.stdout + done.stderr
    assert len(exported(redis_url)["long"].messages) == 8  # nothing lost


def test_a_label_given_twice_with_two_values_is_refused(populated: str) -> None:
    for command in (["threads", "erase", "--yes"], ["threads", "list"]):
        refused = cli_here(populated, *command, "--label", "user=alice", "--label", "user=bob")
        assert refused.returncode == 2
        assert "label 'user' given twice" in refused.stderr
    assert len(thread_ids(populated)) == 3


def test_compact_without_a_model_says_how_to_get_one(redis_url: str, tmp_path: Path) -> None:
    write_threads(redis_url, {"long": {"texts": [f"t{n}" for n in range(8)]}})
    done = cli(redis_url, "threads", "compact", "long", cwd=tmp_path)  # no .env there
    assert done.returncode == 1
    assert "OPENAI_API_KEY" in done.stderr
    assert "--offline" in done.stderr
