"""What comes from data prints as itself: ids, labels and texts holding markup, control characters or emoji codes.

A thread id or label value is written by an application (often from user input) and shown to an
operator. It must neither crash a command for the whole prefix (``[/x]`` is a closing tag Rich
refuses), nor vanish into styling (``[red]x`` shown as ``x``), nor act on the terminal (an ESC
sequence clearing the screen, a carriage return overwriting the line, a newline forging a row,
a bidirectional override reordering it). Control characters show escaped as Python writes them
in a repr (``\\x1b``); everything else shows exactly as stored.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from agent_framework_redis_store import RedisChatMessageStore, ThreadRecord

from .scripted import user_message
from .test_cli_threads import cli, cli_here, cli_on_terminal

# (the value written, as the terminal must show it)
HOSTILE = [
    pytest.param("[/x]", "[/x]", id="closing-tag"),
    pytest.param("[red]x[/red]", "[red]x[/red]", id="style-tags"),
    pytest.param("[link=http://e]x", "[link=http://e]x", id="link-tag"),
    pytest.param("[bold]", "[bold]", id="open-tag"),
    pytest.param("\x1b[2J", "\\x1b[2J", id="clear-screen"),
    pytest.param("\x1b]8;;http://e\x1b\\x\x1b]8;;\x1b\\", "\\x1b]8;;http://e\\x1b\\x\\x1b]8;;\\x1b\\", id="osc8-link"),
    pytest.param("a\rb", "a\\rb", id="carriage-return"),
    pytest.param("a\nb", "a\\nb", id="newline"),
    pytest.param("tab\there", "tab\\there", id="tab"),
    pytest.param("bell\x07", "bell\\x07", id="bell"),
    pytest.param("c1\x9b2J", "c1\\x9b2J", id="c1-csi"),
    pytest.param(":{}", ":{}", id="colon-braces"),
    pytest.param(":thumbs_up:", ":thumbs_up:", id="emoji-code"),
    pytest.param("chat 💬 ok", "chat 💬 ok", id="emoji"),
    pytest.param("\u202eevil\u2066x\u2069\u200f", "\\u202eevil\\u2066x\\u2069\\u200f", id="bidi-controls"),
    pytest.param("שלום", "שלום", id="rtl-text"),
]

# Nothing that acts on a terminal may reach the output raw (colour is off in these runs).
ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def write_hostile(url: str, value: str) -> None:
    """A thread whose id, label value and message text are all ``value``, written by the library."""

    async def main() -> None:
        async with RedisChatMessageStore(url, thread_id=value, labels={"tag": value}) as store:
            await store.add_messages([user_message(value)])

    asyncio.run(main())


def assert_inert(text: str) -> None:
    assert not ACTIVE.search(text), f"a terminal control character reached the output: {text!r}"


def table_rows(stdout: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in stdout.splitlines() if "│" in line]


@pytest.mark.parametrize(("value", "expected"), HOSTILE)
def test_hostile_ids_and_labels_print_literally_in_every_command(
    redis_url: str, tmp_path: Path, value: str, expected: str
) -> None:
    write_hostile(redis_url, value)
    write_hostile(redis_url, "plain")  # a neighbour: one hostile thread must not break the listing of others

    listed = cli_here(redis_url, "threads", "list")
    assert listed.returncode == 0, listed.stderr
    assert_inert(listed.stdout)
    rows = table_rows(listed.stdout)
    # One row per thread: a newline or carriage return in an id forges no row.
    assert sorted(row[0] for row in rows) == sorted([expected, "plain"])
    assert [row[5] for row in rows if row[0] == expected] == [f"tag={expected}"]

    as_json = json.loads(cli_here(redis_url, "threads", "list", "--json").stdout)
    assert {t["thread_id"]: t["labels"] for t in as_json["threads"]}[value] == {"tag": value}

    shown = cli_here(redis_url, "threads", "show", value)
    assert shown.returncode == 0, shown.stderr
    assert_inert(shown.stdout)
    header, *transcript = shown.stdout.splitlines()
    assert header.startswith(f"{expected}  1 messages, ")
    assert f"labels tag={expected}, " in header
    # A message's text keeps its line breaks and tabs (it is a conversation); nothing else acts.
    assert "\n".join(transcript) == ("user: " + expected.replace("\\n", "\n").replace("\\t", "\t")).expandtabs()
    detail = json.loads(cli_here(redis_url, "threads", "show", value, "--json").stdout)
    assert (detail["thread"]["thread_id"], detail["messages"][0]["contents"][0]["text"]) == (value, value)

    streamed = cli_here(redis_url, "threads", "export", value, "-o", "-")
    assert streamed.returncode == 0, streamed.stderr
    assert ThreadRecord.from_json(streamed.stdout).labels == {"tag": value}
    file_name = value.replace("/", "_") + ".jsonl"  # the file's name is data too
    exported = cli_here(redis_url, "threads", "export", value, "-o", str(tmp_path / file_name))
    assert exported.returncode == 0, exported.stderr
    assert_inert(exported.stderr)
    assert exported.stderr == f"exported 1 thread(s) to {tmp_path}/{expected.replace('/', '_')}.jsonl\n"
    assert ThreadRecord.from_json((tmp_path / file_name).read_bytes()).thread_id == value

    deleting = cli_here(redis_url, "threads", "delete", value, "--dry-run")
    assert deleting.returncode == 0, deleting.stderr
    assert_inert(deleting.stdout)
    assert [row[0] for row in table_rows(deleting.stdout)] == [expected]
    assert deleting.stdout.rstrip().endswith("nothing deleted (--dry-run)")

    erasing = cli_here(redis_url, "threads", "erase", "--label", f"tag={value}", "--dry-run")
    assert erasing.returncode == 0, erasing.stderr
    assert_inert(erasing.stdout)
    receipt, *erased = erasing.stdout.splitlines()
    assert receipt.startswith(f"would erase 1 thread(s) carrying tag={expected} (")
    assert erased == [f"  {expected}"]

    compacting = cli_here(redis_url, "threads", "compact", value, "--dry-run")
    assert compacting.returncode == 0, compacting.stderr
    assert compacting.stdout == f"{expected}: 1 unsummarized message(s), not due\n"

    # An error quoting the id is still one line.
    missing = cli_here(redis_url, "threads", "delete", value, f"{value}-gone", "--yes")
    assert missing.returncode == 1
    assert_inert(missing.stderr)
    assert len(missing.stderr.splitlines()) == 1, missing.stderr
    assert missing.stderr.startswith("error: unknown thread id(s) under 'chat_messages': ")

    prefix = f"p{value}".replace("{", "(").replace("}", ")")  # a prefix holds no braces
    with_prefix = cli_here(redis_url, "threads", "list", "--key-prefix", prefix)
    assert with_prefix.returncode == 0, with_prefix.stderr
    assert_inert(with_prefix.stdout)


def test_on_a_colour_terminal_only_styles_reach_the_screen(redis_url: str) -> None:
    """With colour on, Rich writes SGR sequences (``ESC[...m``); nothing of the data adds another."""
    values = [str(param.values[0]) for param in HOSTILE]
    for value in values:
        write_hostile(redis_url, value)
    for args in (["threads", "list"], ["threads", "show", "\x1b[2J"], ["threads", "show", "a\rb"]):
        done = cli(redis_url, *args, color=True)
        assert done.returncode == 0, done.stderr
        without_styles = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
        assert_inert(without_styles)
    listed = re.sub(r"\x1b\[[0-9;]*m", "", cli(redis_url, "threads", "list", color=True).stdout)
    assert len([line for line in listed.splitlines() if "│" in line]) == len(values)


def test_the_question_and_the_table_on_a_terminal_show_data_escaped(redis_url: str) -> None:
    write_hostile(redis_url, "\x1b[2J")
    deleting = cli_on_terminal(redis_url, "threads", "delete", "\x1b[2J", answer="n")
    assert (deleting.asked, deleting.returncode) == (True, 1)
    erasing = cli_on_terminal(redis_url, "threads", "erase", "--label", "tag=\x1b[2J", answer="n")
    assert (erasing.asked, erasing.returncode) == (True, 1)
    assert "\x1b[2J" not in deleting.screen + erasing.screen
    assert "│ \\x1b[2J " in deleting.screen  # the table's row
    assert "carrying tag=\\x1b[2J under key prefix" in erasing.screen  # the question
