"""Ctrl-C: the first SIGINT stops any command within seconds, exit status 130, and leaves no half output.

Each command runs as a real process and gets exactly one SIGINT, sent once the process is seen
at work (its temporary file has records, Redis holds its first thread, its question is on the
terminal): no timing is guessed. ``asyncio.run`` cancels the task once, and that cancellation
used to be lost in a race inside redis-py's socket write (Python 3.11's ``asyncio.wait_for``), so
that an export of many threads ran on to its end and exited 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from agent_framework_redis_store import RedisThreadRegistry, ThreadRecord
from agent_framework_redis_store.testing import EmbeddedRedis

from .test_cli_threads import QUESTION, cli_env, write_threads

T = TypeVar("T")

# Seconds from the SIGINT to the exit (it takes ~0.1 s; a loaded 2-core machine took over 5 once). A
# swallowed Ctrl-C never exits at the question, and against a paused server it would end in the
# 5 s socket timeout's error instead of status 130 and "interrupted": the assertions tell those apart.
STOPS_WITHIN = 20.0
EXPORTED_THREADS = 20_000  # an export of these takes seconds: the SIGINT always lands mid-way
IMPORTED_THREADS = 5_000


def until(found: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Poll ``found`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        time.sleep(0.005)
    pytest.fail(f"waited {timeout} s for {what}")


def command(url: str, *args: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent_framework_redis_store", *args],
        env=cli_env(url),
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def interrupt(process: subprocess.Popen[str]) -> int:
    """One SIGINT; the exit status. Fails if the process outlives STOPS_WITHIN."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=STOPS_WITHIN)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"still running {STOPS_WITHIN} s after the first Ctrl-C")


def record(number: int) -> ThreadRecord:
    active = datetime(2025, 1, 1, tzinfo=UTC)
    messages = [
        {"role": "user", "contents": [{"type": "text", "text": f"question {number}"}]},
        {"role": "assistant", "contents": [{"type": "text", "text": f"answer {number}"}]},
    ]
    return ThreadRecord(f"t{number}", messages, {"user": f"u{number % 7}"}, active, active, None, None)


@pytest.fixture(scope="module")
def many_threads() -> Iterator[EmbeddedRedis]:
    """A server of this module's own (paused by a test) holding EXPORTED_THREADS small threads."""

    async def fill(url: str) -> None:
        async with RedisThreadRegistry(url) as registry:
            limit = asyncio.Semaphore(64)

            async def one(number: int) -> None:
                async with limit:
                    assert await registry.import_thread(record(number))

            await asyncio.gather(*(one(n) for n in range(EXPORTED_THREADS)))

    with EmbeddedRedis() as server:
        asyncio.run(fill(server.url))
        yield server


@pytest.mark.parametrize(
    ("existing", "frozen"),
    [(False, False), (True, False), (False, True)],
    ids=["new-file", "existing-file", "redis-not-answering"],
)
def test_first_ctrl_c_stops_an_export_and_leaves_the_file_as_it_was(
    many_threads: EmbeddedRedis, tmp_path: Path, existing: bool, frozen: bool
) -> None:
    output = tmp_path / "threads.jsonl"
    if existing:
        output.write_text("an earlier export\n")

    def temporary() -> list[Path]:
        return [p for p in tmp_path.iterdir() if p.name.startswith(".threads.jsonl.")]

    overwrite = ["--yes"] if existing else []  # an existing file is overwritten only with consent
    export = command(
        many_threads.url, "threads", "export", "--all", "-o", str(output), *overwrite, stderr=subprocess.PIPE
    )
    # At work: records have reached its temporary file (the first buffer written).
    until(lambda: [p for p in temporary() if p.stat().st_size > 0], "the export's first records")
    if frozen:
        many_threads.pause()  # mid-export, Redis stops answering: the command waits on a reply
    try:
        status = interrupt(export)
    finally:
        if frozen:
            many_threads.resume()
    assert export.stderr is not None
    stderr = export.stderr.read()
    assert status == 130, stderr
    assert stderr.splitlines()[-1] == f"interrupted: {output} was left as it was"
    assert temporary() == []
    if existing:
        assert output.read_text() == "an earlier export\n"
    else:
        assert not output.exists()


def test_first_ctrl_c_stops_an_import_between_whole_threads(
    redis_url: str, tmp_path: Path, raw_sync: redis.Redis
) -> None:
    records = [record(n) for n in range(IMPORTED_THREADS)]
    file = tmp_path / "threads.jsonl"
    file.write_text("".join(r.to_json() + "\n" for r in records))

    importing = command(redis_url, "threads", "import", str(file), stderr=subprocess.PIPE)
    until(lambda: raw_sync.zcard("chat_messages:registry"), "the import's first thread")
    status = interrupt(importing)
    assert importing.stderr is not None
    last = importing.stderr.read().splitlines()[-1]
    assert status == 130, last

    stored = asyncio.run(exported(redis_url))
    # Sequential and atomic per thread: a prefix of the file, each thread whole (none half-written).
    assert 0 < len(stored) < IMPORTED_THREADS
    assert sorted(stored) == sorted(r.thread_id for r in records[: len(stored)])
    for thread_id, exported_record in stored.items():
        original = records[int(thread_id.removeprefix("t"))]
        assert (exported_record.messages, exported_record.labels) == (original.messages, original.labels)
    # It says what it imported: N threads, and the one under way is whole or absent.
    reported = int(last.removeprefix("interrupted: imported ").split(" ", 1)[0])
    assert len(stored) in (reported, reported + 1)
    assert last == (
        f"interrupted: imported {reported} of {IMPORTED_THREADS} thread(s), each whole; the thread of line "
        f"{reported + 1} ('t{reported}') is imported whole or not at all; "
        "run it again with --skip-bad to import the rest"
    )
    # ... and the advice works.
    rest = command(redis_url, "threads", "import", str(file), "--skip-bad", "--json", stdout=subprocess.PIPE)
    out, _ = rest.communicate(timeout=300)
    assert rest.returncode == 0
    assert json.loads(out)["imported"] == IMPORTED_THREADS - len(stored)
    assert raw_sync.zcard("chat_messages:registry") == IMPORTED_THREADS


def test_ctrl_c_while_import_reads_stdin_stops_it_and_imports_nothing(redis_url: str, raw_sync: redis.Redis) -> None:
    importing = command(
        redis_url, "threads", "import", "-", stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )  # fmt: skip
    assert importing.stdin is not None
    importing.stdin.write(record(1).to_json() + "\n")  # a line, and no end: the command waits for more
    importing.stdin.flush()
    # Blocked in the read of its stdin (the kernel says where the process sleeps).
    until(lambda: "pipe_read" in Path(f"/proc/{importing.pid}/wchan").read_text(), "the read of stdin")
    try:
        status = interrupt(importing)
    finally:
        importing.stdin.close()
    assert importing.stderr is not None
    assert status == 130, importing.stderr.read()
    assert raw_sync.exists("chat_messages:registry", "chat_messages:{t1}") == 0


async def exported(url: str) -> dict[str, ThreadRecord]:
    async with RedisThreadRegistry(url) as registry:
        return {t.thread_id: await registry.export_thread(t.thread_id) async for t in registry.iter_threads()}


@pytest.fixture
def raw_sync(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as client:
        yield client


def test_ctrl_c_at_the_question_stops_at_once_and_changes_nothing(redis_url: str) -> None:
    """The question reads the terminal on the event loop's thread: Ctrl-C must end the read itself."""
    write_threads(redis_url, {"keep-me": {"texts": ["hello"]}})
    primary, secondary = pty.openpty()
    deleting = command(redis_url, "threads", "delete", "keep-me", stdin=secondary, stderr=secondary)
    os.close(secondary)
    screen = b""
    try:
        while QUESTION.encode() not in screen:
            ready, _, _ = select.select([primary], [], [], 60)
            assert ready, f"no question after 60 s; the screen so far: {screen!r}"
            screen += os.read(primary, 4096)
        status = interrupt(deleting)
        with_answer = screen + _drain(primary)
    finally:
        os.close(primary)
    assert status == 130
    assert b"aborted: nothing was changed" in with_answer
    with redis.Redis.from_url(redis_url) as client:
        assert client.llen("chat_messages:{keep-me}") == 1


def _drain(primary: int) -> bytes:
    """What the command wrote to the terminal after the question, up to its exit."""
    rest = b""
    while select.select([primary], [], [], 0)[0]:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        rest += chunk
    return rest
