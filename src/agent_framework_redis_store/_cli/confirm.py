"""Consent before destruction: a command that deletes or overwrites data asks first.

Such a command takes ``--dry-run`` (say what would change, change nothing) and ``--yes``.
Without ``--yes`` it shows what it is about to destroy and asks on the terminal; anything but
``y`` or ``yes`` (an empty line, end of input) is no, and it exits 1 having changed nothing
(Ctrl-C is no too, and exits 130 as Ctrl-C does anywhere). When stdin or stderr is not a
terminal nobody can see or answer the question, and it refuses at once, before connecting, in
one line naming ``--yes``: a script must say ``--yes``, so that a forgotten flag shows on its
first run instead of in what it deleted, and whatever happens to be on stdin (``yes |``, a
here-document meant for something else) never counts as an answer.

A new destructive command takes ``DryRun`` and ``Yes``, calls ``must_ask`` first, and ``ask``
once it knows what it would destroy (not at all when that is nothing).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .console import err, fail, say, shown
from .interrupt import EXIT_STATUS, answering

__all__ = ["DryRun", "Yes", "ask", "must_ask"]

DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
Yes = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (required when not run on a terminal)."),
]


def _on_terminal() -> bool:
    """Someone can read the question (stderr) and answer it (stdin)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def must_ask(action: str, *, yes: bool, dry_run: bool, has_dry_run: bool = True) -> bool:
    """Whether to ask before ``action`` (e.g. "threads delete deletes threads").

    Exits 1 at once, with one line, when consent is needed and there is no terminal to ask on
    (naming --dry-run too unless the command has none: ``has_dry_run``).
    """
    if yes or dry_run:
        return False
    if not _on_terminal():
        hint = " (--dry-run shows what would change)" if has_dry_run else ""
        fail(f"{action}: pass --yes to confirm, there is no terminal to ask on{hint}")
    return True


def ask(question: str) -> None:
    """Ask ``question`` on the terminal; exit 1 with one line unless the answer is y or yes (130 on Ctrl-C)."""
    status = 1
    try:
        with answering():  # before the question shows: a Ctrl-C as soon as it does ends the read
            err.print(f"{shown(question)} [y/N] ", end="", soft_wrap=True)
            sys.stderr.flush()
            answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer, status = "", EXIT_STATUS
    if not answer.endswith("\n"):
        err.print()  # end of input or Ctrl-C: end the question's line
    if answer.strip().lower() not in ("y", "yes"):
        say("aborted: nothing was changed", stderr=True)
        raise typer.Exit(status)
