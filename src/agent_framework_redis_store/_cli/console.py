"""Where the commands write: results on stdout, everything else (errors, progress, questions) on stderr.

An error is one line on stderr and exit status 1, so that ``--json`` output on stdout stays
parseable and scripts can tell failure from success.

What comes from data (thread ids, labels, message text, keys, file names, error text quoting
them) prints as itself: the consoles interpret no markup (``[red]``) and no emoji codes
(``:smile:``), styles are given as ``rich.text.Text`` styles, and every such value goes through
``shown`` so that no character of it acts on the terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["emit_json", "err", "fail", "out", "say", "shown", "table_or_records"]

# markup=False, emoji=False: a string printed is the string, whatever brackets or colons it holds.
out = Console(highlight=False, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, markup=False, emoji=False)

# Characters that act on a terminal instead of showing: C0 and C1 controls (ESC begins colour,
# cursor and clear-screen sequences; CR and LF rewrite or forge a line; BEL rings), DEL, the line
# and paragraph separators, the bidirectional marks, embeddings, overrides and isolates (they
# reorder or hide what follows: "Trojan Source", CVE-2021-42574), and lone surrogates (which
# cannot be encoded, so printing one would crash the command).
_BEYOND_C0 = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_ACTIVE_CHARACTER = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
# Inside a JSON string json.dumps escapes the C0 controls itself, and outside one it writes only
# structure and whitespace; the others are valid JSON as they are, but act on a terminal too.
_ACTIVE_IN_JSON = re.compile(f"[{_BEYOND_C0}]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(character: str) -> str:
    code = ord(character)
    return _NAMED_ESCAPES.get(character) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def shown(value: object, *, lines: bool = False) -> str:
    """``value`` as text safe to print: each character that would act on the terminal as its escape.

    Written as Python writes it in a repr (``\\x1b``, ``\\r``, ``\\n``, ``\\u202e``), so that a
    value can neither recolour, move the cursor, clear the screen, ring, reorder its line nor
    forge another line. ``lines``: keep line breaks and tabs (a message's text).
    """
    text = str(value)
    if lines:
        return _ACTIVE_CHARACTER.sub(lambda m: m.group() if m.group() in "\n\t" else _escape(m.group()), text)
    return _ACTIVE_CHARACTER.sub(lambda m: _escape(m.group()), text)


def say(message: object, *, stderr: bool = False) -> None:
    """``message`` as one line on stdout (``stderr``: on stderr), printed as itself (see ``shown``)."""
    (err if stderr else out).print(shown(message), soft_wrap=True)


def fail(message: str) -> NoReturn:
    """``error: <message>`` on stderr (one line, whatever ``message`` quotes), exit status 1."""
    err.print(Text.assemble(("error:", "red"), " ", shown(message)), soft_wrap=True)
    raise typer.Exit(1)


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout; characters that would act on a terminal as ``\\uXXXX``."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    typer.echo(_ACTIVE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


_UNBOUNDED = 100_000


def table_or_records(
    console: Console,
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    facts: Callable[[int], Sequence[str]],
    *,
    right: Collection[str] = (),
) -> None:
    """``rows`` (cells already ``shown``) as a table where it fits the console whole, else one record per row.

    An id (a row's first cell) and a word of any other cell are never split: where the table cannot
    hold them whole (a narrow terminal, long ids), each row gets a record instead: its id alone on a
    line, then ``facts(i)`` of row ``i``, filled at spaces between whole facts.
    """
    table = Table(title=None if title is None else shown(title), title_justify="left")
    for position, column in enumerate(columns):
        # No column wraps inside a word; the id column never wraps at all.
        table.add_column(column, justify="right" if column in right else "left", no_wrap=position == 0)
    for row in rows:
        table.add_row(*row)
    if console.measure(table, options=console.options.update_width(_UNBOUNDED)).minimum <= console.width:
        console.print(table)
        return
    if title is not None:
        for line in _fill(shown(title).split(" "), console.width, ""):
            console.print(line, soft_wrap=True)
    for index, row in enumerate(rows):
        console.print(row[0], soft_wrap=True)
        for line in _fill(facts(index), console.width, "  "):
            console.print(line, soft_wrap=True)


def _fill(pieces: Sequence[str], width: int, indent: str) -> list[str]:
    """``pieces`` joined by spaces into lines of at most ``width``, never splitting one (a longer one stands alone)."""
    lines: list[str] = []
    line = ""
    for piece in pieces:
        if line and len(indent) + len(line) + 1 + len(piece) > width:
            lines.append(indent + line)
            line = ""
        line = f"{line} {piece}" if line else piece
    if line:
        lines.append(indent + line)
    return lines
