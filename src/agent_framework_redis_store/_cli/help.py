"""``--help`` an operator can read at any width: whole option names, whole words, whole sentences.

Rich's help panels squeeze a table into the terminal, cutting option names ("--source-u…") and
breaking sentences a word per line at 40 columns. The app uses click's plain help
(``rich_markup_mode=None``: no ``<bool>`` after a flag either) with:

- the terminal's real width (click never goes below 50 columns, so at 40 the terminal broke
  every line again);
- no Python types ("<list[str]>") after the names of arguments;
- words never split, not at a hyphen either ("--older-" "than"): a word wider than the line
  overflows it whole;
- below a width where the help column would be a word or two wide, each option's help on the
  lines under it instead of beside it;
- a command listing that gives each command's first sentence whole, wrapped, where click cut it
  at a width-dependent length, or at the "." of "e.g.".
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Sequence
from typing import Any

from typer._click import Context, HelpFormatter
from typer.core import TyperGroup

__all__ = ["HelpContext", "HelpGroup", "help_width"]

_MAX_WIDTH = 100
_NARROWEST_BESIDE = 30  # a help column narrower than this goes under its option
_PYTHON_TYPE = re.compile(r" <([^<>]*)>$")
_VALUE_WORDS = {"str": "TEXT", "int": "N", "float": "NUMBER", "path": "PATH"}


def _wrap(text: str, width: int, indent: str) -> list[str]:
    """``text``'s paragraphs wrapped to ``width`` at spaces only, each line starting with ``indent``."""
    wrapper = textwrap.TextWrapper(
        width=max(width, len(indent) + 1),
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    lines: list[str] = []
    for paragraph in text.strip().split("\n\n"):
        if lines:
            lines.append("")
        lines += wrapper.wrap(" ".join(paragraph.split())) or [indent]
    return lines


class WholeWordFormatter(HelpFormatter):
    """Click's help formatter, wrapping at spaces only, with help under its option when narrow."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        prefix = "Usage: " if prefix is None else prefix
        lines = _wrap(f"{prog} {args}", self.width, " " * (self.current_indent + len(prefix)))
        self.write("\n".join([f"{prefix:>{self.current_indent}}{lines[0].lstrip()}", *lines[1:]]) + "\n")

    def write_text(self, text: str) -> None:
        self.write("\n".join(_wrap(text, self.width, " " * self.current_indent)) + "\n")

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        rows = [(_without_python_type(term), text) for term, text in rows]
        first_col = min(max((len(term) for term, _ in rows), default=0), col_max) + col_spacing
        beside = self.width - self.current_indent - first_col >= _NARROWEST_BESIDE
        for term, text in rows:
            self.write(f"{'':>{self.current_indent}}{term}")
            if not text:
                self.write("\n")
                continue
            if beside:
                indent = " " * (self.current_indent + first_col)
                lines = _wrap(text, self.width, indent)
                if len(term) <= first_col - col_spacing:
                    lines[0] = " " * (first_col - len(term)) + lines[0].lstrip()
                else:
                    self.write("\n")
            else:
                lines = _wrap(text, self.width, " " * (self.current_indent + 4))
                self.write("\n")
            self.write("\n".join(lines) + "\n")


def _without_python_type(term: str) -> str:
    """typer names a value by its Python type ("THREAD_ID <list[str]>", "--keep <int range>"): an
    argument's name says what it is; an option without a metavar gets a plain word (``--keep N``)."""
    found = _PYTHON_TYPE.search(term)
    if found is None:
        return term
    if not term.startswith("-"):
        return term[: found.start()]
    kind = found.group(1).split()[0]
    return f"{term[: found.start()]} {_VALUE_WORDS.get(kind, kind.upper())}"


class HelpContext(Context):
    """A command's context whose help uses ``WholeWordFormatter``."""

    formatter_class = WholeWordFormatter


def help_width() -> int:
    """The width help is wrapped to: the terminal's ($COLUMNS), less a margin, at most 100."""
    return max(20, min(shutil.get_terminal_size().columns, _MAX_WIDTH) - 2)


class HelpGroup(TyperGroup):
    """A command group whose help, and its commands' help, follow the terminal's width and wrap whole words."""

    context_class = HelpContext

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.context_class is Context:
            command.context_class = HelpContext  # the commands typer builds for this group
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        if parent is None:  # the root: every level below inherits it
            extra.setdefault("terminal_width", help_width())
        return super().make_context(info_name, args, parent=parent, **extra)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            rows.append((name, command.short_help or _first_paragraph(command.help or "")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _first_paragraph(text: str) -> str:
    """The docstring's first paragraph as one line (its summary sentence)."""
    return " ".join(text.strip().split("\n\n", 1)[0].split())
