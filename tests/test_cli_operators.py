"""The CLI as an operator meets it: narrow terminals, receipts of large deletions, pipes and stdin,
files that exist or cannot be written, and Redis set-up mistakes named for what they are.

Against real redis-server processes; the commands run as subprocesses where the terminal width,
a pipe or stdin matters, and in this process (typer's runner) elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_framework_redis_store import RedisThreadRegistry, ThreadRecord
from agent_framework_redis_store._cli.threads import _keep_receipt
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message
from .test_cli_threads import cli, cli_env, cli_here, cli_on_terminal, thread_ids, write_threads

UUID_LIKE = "3f2c9a1e-5b7d-4c1e-9a2b-8d7e6f5a4b3c"
LONG_LABEL = "tier=gold-premium-customer"


def write_many(url: str, count: int, *, labels: dict[str, str] | None = None, days_old: int = 0) -> list[str]:
    """``count`` one-message threads ``t-000``... (last active ``days_old`` days ago), in one connection."""
    ids = [f"t-{n:03}" for n in range(count)]
    active = datetime.now(UTC) - timedelta(days=days_old)

    async def main() -> None:
        async with RedisThreadRegistry(url) as registry:
            for thread_id in ids:
                message = user_message(f"{thread_id} says hi").to_dict(exclude_none=True)
                record = ThreadRecord(thread_id, [message], labels or {}, active, active, None, None)
                assert await registry.import_thread(record)

    asyncio.run(main())
    return ids


# -- narrow terminals -------------------------------------------------------------------------


@pytest.fixture
def labelled(redis_url: str) -> str:
    labels = {"user": "alice", "tier": "gold-premium-customer"}
    write_threads(
        redis_url,
        {"thread-0398": {"texts": ["hi"], "labels": labels}, UUID_LIKE: {"texts": ["a", "b"], "labels": labels}},
    )
    return redis_url


@pytest.mark.parametrize("width", [200, 60, 40])
def test_list_never_splits_a_thread_id_or_a_label(labelled: str, width: int) -> None:
    done = cli(labelled, "threads", "list", env={"COLUMNS": str(width)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for whole in ("thread-0398", UUID_LIKE, LONG_LABEL, "user=alice"):
        assert any(whole in line for line in lines), f"{whole!r} is split at {width} columns:\n{done.stdout}"
    assert max(len(line.rstrip()) for line in lines) <= width, done.stdout


def test_the_delete_question_shows_whole_ids_on_a_narrow_terminal(labelled: str) -> None:
    asked = cli_on_terminal(labelled, "threads", "delete", "thread-0398", UUID_LIKE, answer="n", env={"COLUMNS": "40"})
    assert (asked.asked, asked.returncode) == (True, 1), asked.screen
    lines = asked.screen.splitlines()
    for whole in ("thread-0398", UUID_LIKE, LONG_LABEL):
        assert any(whole in line for line in lines), asked.screen
    assert sorted(thread_ids(labelled)) == sorted(["thread-0398", UUID_LIKE])


@pytest.mark.parametrize("width", [60, 40])
@pytest.mark.parametrize(
    ("command", "options", "sentence"),
    [
        (
            ["threads", "erase"],
            ["--label KEY=VALUE", "--dry-run", "--yes", "--receipt PATH", "--json", "--redis-url URL"],
            "Erase every thread carrying all the --label's (e.g. one user's), and print a receipt.",
        ),
        (
            ["threads", "export"],
            ["--output PATH", "--all", "--yes", "--json", "--key-prefix PREFIX", "--cluster / --no-cluster"],
            "Write threads to a JSON Lines file, one thread per line.",
        ),
        (
            ["migrate", "agent-framework-redis"],
            ["--source-url URL", "--source-key-prefix PREFIX", "--thread-id-template TEMPLATE", "--delete-source"],
            "Copy the threads of Microsoft's agent-framework-redis stores, legacy and 1.x.",
        ),
        (
            ["checkpoints", "prune"],
            ["--workflow TEXT", "--keep N", "--dry-run", "--yes"],  # a value's word where no metavar was given
            "Delete a workflow's checkpoints but the newest --keep (in one atomic step).",
        ),
        (
            ["threads"],
            ["--redis-url URL", "--key-prefix PREFIX"],
            "erase Erase every thread carrying all the --label's (e.g. one user's), and print a receipt.",
        ),
    ],
)
def test_help_keeps_option_names_and_sentences_whole(
    command: list[str], options: list[str], sentence: str, width: int
) -> None:
    done = cli_here(None, *command, "--help", env={"COLUMNS": str(width)})
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for option in options:
        assert option in text, f"{option!r} missing or cut at {width} columns:\n{text}"
    assert sentence in " ".join(text.split()), text  # no word split, nothing cut off
    assert "…" not in text
    assert "<bool>" not in text
    assert "<list[str]>" not in text
    # Wider than the terminal only where a single word is: never a line wrapped late.
    for line in text.splitlines():
        assert len(line) <= width or " " not in line.strip(), line


def test_json_is_a_flag_in_help() -> None:
    text = cli_here(None, "threads", "list", "--help").stdout
    assert re.search(r"^\s+--json\s+Print machine-readable JSON\.", text, re.MULTILINE), text


def test_an_empty_listing_says_no_threads(redis_url: str) -> None:
    empty = cli_here(redis_url, "threads", "list")
    assert (empty.returncode, empty.stdout.strip()) == (0, "no threads under 'chat_messages'")
    write_threads(redis_url, {"t": {"texts": ["x"], "labels": {"user": "alice"}}})
    filtered = cli_here(redis_url, "threads", "list", "--label", "user=bob")
    assert filtered.stdout.strip() == "no threads matching --label/--since under 'chat_messages'"


# -- receipts ---------------------------------------------------------------------------------


def receipt_named(stdout: str, command: str) -> Path:
    found = re.search(rf"^receipt with every thread id: ({command}-receipt-\S+\.json)$", stdout, re.MULTILINE)
    assert found is not None, stdout
    return Path(found.group(1))


def test_erasing_more_threads_than_listed_leaves_the_whole_receipt_in_a_file(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = write_many(redis_url, 25, labels={"user": "alice"})
    monkeypatch.chdir(tmp_path)
    done = cli_here(redis_url, "threads", "erase", "--label", "user=alice", "--yes")
    assert done.returncode == 0, done.stderr
    assert "... and 5 more" in done.stdout
    receipt = json.loads(receipt_named(done.stdout, "erase").read_text())
    assert sorted(receipt["thread_ids"]) == ids
    assert receipt["labels"] == {"user": "alice"}
    assert receipt["complete"] is True
    assert (receipt["written_during"], receipt["remaining"], receipt["unverified"]) == ([], [], [])
    assert receipt["started_at"] <= receipt["finished_at"]
    assert thread_ids(redis_url) == []


def test_a_small_erasure_leaves_no_file_unless_asked(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_many(redis_url, 3, labels={"user": "alice"})
    monkeypatch.chdir(tmp_path)
    listed = cli_here(redis_url, "threads", "erase", "--label", "user=alice", "--yes")
    assert listed.returncode == 0
    assert list(tmp_path.iterdir()) == []  # all three ids are on the screen

    write_many(redis_url, 3, labels={"user": "alice"})
    asked = cli_here(redis_url, "threads", "erase", "--label", "user=alice", "--yes", "--receipt", "mine.json")
    assert asked.returncode == 0
    assert "receipt with every thread id: mine.json" in asked.stdout
    assert len(json.loads((tmp_path / "mine.json").read_text())["thread_ids"]) == 3


def test_a_receipt_path_that_exists_is_refused_before_anything_is_deleted(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = write_many(redis_url, 3, labels={"user": "alice"})
    (tmp_path / "old.json").write_text("kept")
    monkeypatch.chdir(tmp_path)
    for command in (
        ["erase", "--label", "user=alice"],
        ["purge", "--older-than", "1s"],
        ["delete", *ids],
    ):
        refused = cli_here(redis_url, "threads", *command, "--yes", "--receipt", "old.json")
        assert refused.returncode == 1
        assert "--receipt old.json: the file exists" in refused.stderr
    assert (tmp_path / "old.json").read_text() == "kept"
    assert sorted(thread_ids(redis_url)) == ids


def test_purge_and_delete_of_many_threads_leave_receipts(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = write_many(redis_url, 22, days_old=40)
    monkeypatch.chdir(tmp_path)
    purged = cli_here(redis_url, "threads", "purge", "--older-than", "30d", "--yes")
    assert purged.returncode == 0, purged.stderr
    receipt = json.loads(receipt_named(purged.stdout, "purge").read_text())
    assert (sorted(receipt["thread_ids"]), receipt["purged"]) == (old, 22)

    fresh = write_many(redis_url, 21)
    deleted = cli_here(redis_url, "threads", "delete", *fresh, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith("deleted 21 thread(s)")
    receipt = json.loads(receipt_named(deleted.stdout, "delete").read_text())
    assert (receipt["thread_ids"], receipt["deleted"]) == (fresh, 21)


def test_automatic_receipts_never_overwrite_one_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = _keep_receipt({"thread_ids": ["a"]}, None, "erase", listed=0)
    second = _keep_receipt({"thread_ids": ["b"]}, None, "erase", listed=0)
    assert first is not None
    assert second is not None
    assert first != second
    assert json.loads(first.read_text())["thread_ids"] == ["a"]
    assert json.loads(second.read_text())["thread_ids"] == ["b"]


# -- export and import ------------------------------------------------------------------------


def test_export_onto_an_existing_file_needs_consent(redis_url: str, tmp_path: Path) -> None:
    write_threads(redis_url, {"t": {"texts": ["x"]}})
    target = tmp_path / "out.jsonl"
    target.write_text("precious\n")
    refused = cli(redis_url, "threads", "export", "--all", "-o", str(target))
    assert refused.returncode == 1
    assert "pass --yes" in refused.stderr
    assert target.read_text() == "precious\n"

    declined = cli_on_terminal(redis_url, "threads", "export", "--all", "-o", str(target), answer="n")
    assert (declined.asked, declined.returncode) == (True, 1)
    assert f"Overwrite {target}?" in declined.screen
    assert target.read_text() == "precious\n"

    accepted = cli(redis_url, "threads", "export", "--all", "-o", str(target), "--yes")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(target.read_text())["thread_id"] == "t"


def test_import_reads_stdin(redis_url: str) -> None:
    write_threads(redis_url, {"a": {"texts": ["x"]}, "b": {"texts": ["y", "z"]}})
    records = cli(redis_url, "threads", "export", "--all", "-o", "-").stdout
    done = subprocess.run(
        [sys.executable, "-m", "agent_framework_redis_store", "threads", "import", "-", "--key-prefix", "copy"],
        input=records,
        capture_output=True,
        text=True,
        env=cli_env(redis_url),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "imported 2 thread(s)" in done.stderr
    assert sorted(thread_ids(redis_url, "copy")) == ["a", "b"]


def test_export_to_a_closed_pipe_ends_quietly(redis_url: str) -> None:
    # Far more than a pipe holds (64 KiB): the export must meet the reader's end.
    write_threads(redis_url, {f"big-{n:02}": {"texts": ["x" * 20_000]} for n in range(20)})
    export = subprocess.Popen(
        [sys.executable, "-m", "agent_framework_redis_store", "threads", "export", "--all", "-o", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(redis_url),
    )
    assert export.stdout is not None
    head = subprocess.run(["head", "-1"], stdin=export.stdout, capture_output=True, timeout=120, check=False)
    export.stdout.close()  # head holds the only read end now, and it has exited
    _, stderr = export.communicate(timeout=120)
    assert json.loads(head.stdout)["thread_id"].startswith("big-")
    assert stderr.decode() == ""
    assert export.returncode == 141  # 128 + SIGPIPE, as a shell reports it


def test_an_unwritable_export_path_is_named_as_given(redis_url: str, tmp_path: Path) -> None:
    write_threads(redis_url, {"t": {"texts": ["x"]}})
    (tmp_path / "a-file").write_text("")
    for given in (tmp_path / "missing" / "out.jsonl", tmp_path / "a-file" / "out.jsonl", tmp_path):
        done = cli_here(redis_url, "threads", "export", "--all", "-o", str(given))
        assert done.returncode == 1
        assert f"cannot write {given}" in done.stderr
        assert f".{given.name}." not in done.stderr  # no temporary file's name


def test_import_names_lines_and_columns_and_missing_ids(redis_url: str, tmp_path: Path) -> None:
    good = ThreadRecord("good", [user_message("fine").to_dict(exclude_none=True)], {}, None, None, None, None)
    file = tmp_path / "bad.jsonl"
    file.write_text("\n".join(["", '{"thread_id": "a", oops}', '{"messages": []}', '{"thread_id":', good.to_json()]))
    done = cli_here(redis_url, "threads", "import", str(file))
    assert done.returncode == 1
    assert f"{file}, line 2: not JSON at column 20: Expecting property name" in done.stderr
    assert f"{file}, line 3: no thread_id" in done.stderr
    assert f"{file}, line 4: not JSON: the line ends before its JSON does" in done.stderr
    assert thread_ids(redis_url) == []


def test_reimporting_suggests_replace_and_skip_bad_with_every_line_bad_fails(redis_url: str, tmp_path: Path) -> None:
    write_threads(redis_url, {"a": {"texts": ["x"]}, "b": {"texts": ["y"]}})
    file = tmp_path / "all.jsonl"
    assert cli_here(redis_url, "threads", "export", "--all", "-o", str(file)).returncode == 0
    again = cli_here(redis_url, "threads", "import", str(file))
    assert again.returncode == 1
    assert "--replace overwrites the 2 existing thread(s)" in again.stderr

    skipped = cli_here(redis_url, "threads", "import", str(file), "--skip-bad")
    assert skipped.returncode == 1
    assert f"every line of {file} is bad (2, listed above); nothing was imported" in skipped.stderr

    write_threads(redis_url, {"c": {"texts": ["z"]}})
    file.write_text(file.read_text() + "{oops\n")
    partly = cli_here(redis_url, "threads", "import", str(file), "--skip-bad", "--key-prefix", "copy")
    assert partly.returncode == 0, partly.stderr  # the good lines went in


# -- Redis set-up mistakes, named in the command line's terms ----------------------------------


@pytest.fixture(scope="module")
def password_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(extra_args=["--requirepass", "pw-a81c"]) as server:
        yield server


def test_tls_to_a_plain_server_fails_within_seconds(redis_url: str) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    started = time.monotonic()
    done = cli_here(f"rediss://127.0.0.1:{port}/0", "threads", "list")
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert "the server did not answer the TLS handshake (is it serving TLS?)" in done.stderr
    # Typically 0.6-1.6 s (a 0.5 s wait for the handshake, then one plain-text probe). The bound tells it
    # from the 21 s of retries it replaced with room for a loaded 2-core machine.
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_a_missing_password_and_a_database_out_of_range_name_the_flag(password_server: EmbeddedRedis) -> None:
    no_password = cli_here(f"redis://127.0.0.1:{password_server.port}/0", "threads", "list")
    assert no_password.returncode == 1
    assert "the server requires a password (AUTH)" in no_password.stderr
    assert "REDIS_URL" in no_password.stderr  # where this command's URL came from
    given = cli_here(None, "threads", "list", "--redis-url", f"redis://127.0.0.1:{password_server.port}/0")
    assert "put it in --redis-url" in given.stderr
    assert "redis_url" not in given.stderr
    assert "password=" not in given.stderr  # a Python parameter, not an option

    out_of_range = cli_here(
        None, "threads", "list", "--redis-url", f"redis://:pw-a81c@127.0.0.1:{password_server.port}/99"
    )
    assert out_of_range.returncode == 1
    assert f"Redis at redis://***@127.0.0.1:{password_server.port}/99 has no database 99" in out_of_range.stderr
    assert "it has 16 (0 to 15)" in out_of_range.stderr
    assert "a81c" not in out_of_range.stderr


def test_bad_options_are_named_as_options(redis_url: str) -> None:
    scheme = cli_here(None, "threads", "list", "--redis-url", "http://localhost")
    assert scheme.stderr.startswith("error: --redis-url must start with redis://")
    empty = cli_here(redis_url, "threads", "list", "--key-prefix", "")
    assert (empty.returncode, empty.stderr.strip()) == (
        1,
        "error: --key-prefix must not be empty (leave it out for the default, chat_messages)",
    )
    cluster_db = cli_here(None, "threads", "list", "--redis-url", redis_url.replace("/0", "/3"), "--cluster")
    assert "the database in --redis-url must be 0 with --cluster" in cluster_db.stderr
    source = cli_here(redis_url, "migrate", "langchain", "--source-url", "http://localhost", "--dry-run")
    assert source.stderr.startswith("error: --source-url must start with redis://")
    for done in (scheme, cluster_db, source):
        assert done.returncode == 1
        assert "redis_url" not in done.stderr
        assert "cluster=True" not in done.stderr


def test_compact_without_a_model_key_says_how_to_get_one(redis_url: str) -> None:
    write_threads(redis_url, {"t": {"texts": ["x"] * 3}})
    done = cli_here(redis_url, "threads", "compact", "--all")
    assert done.returncode == 1
    assert "OPENAI_API_KEY" in done.stderr
    assert "--offline" in done.stderr
    helped = " ".join(cli_here(None, "threads", "compact", "--help").stdout.split())
    assert "without one, pass --offline" in helped
