"""The ``redis-chat-store`` operator command line, a client of the package's public API.

Needs the ``[cli]`` extra (typer, rich, python-dotenv); ``run`` says so in one line when
it is missing instead of failing with a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["run"]

_MISSING = "redis-chat-store needs the [cli] extra: pip install 'agent-framework-redis-store[cli]' (missing: {})"


def run() -> None:
    """Console-script entry point."""
    try:
        import dotenv  # noqa: F401
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError as err:
        sys.stderr.write(_MISSING.format(err.name) + "\n")
        raise SystemExit(1) from None
    from .app import app

    app(prog_name="redis-chat-store")
