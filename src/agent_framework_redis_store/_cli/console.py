"""Where the commands write: results on stdout, everything else (errors, progress, questions) on stderr.

An error is one line on stderr and exit status 1, so that ``--json`` output on stdout stays
parseable and scripts can tell failure from success.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["emit_json", "err", "fail", "out"]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def fail(message: str) -> NoReturn:
    """``error: <message>`` on stderr, exit status 1."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
