"""``redis-chat-store demo``: the seed notebook's five examples, one on long conversations and one
on a workflow that waits for a person.

Only the command's options live here; ``main`` (embedded Redis, dotenv, the framework)
is imported when the demo runs, so the other commands never load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..target import DEFAULT_KEY_PREFIX, resolve_target

__all__ = ["demo"]


def demo(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Redis to use (default: one given before the command, else $REDIS_URL, else 127.0.0.1:6379, "
            "else an embedded server).",
            show_default=False,
        ),
    ] = None,
    embedded: Annotated[bool, typer.Option(help="Always start a private redis-server for the demo.")] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the embedded redis-server keeps its data (default: the user cache dir).")
    ] = None,
    offline: Annotated[bool, typer.Option(help="Use the offline model even when an OpenAI key is set.")] = False,
    env_file: Annotated[
        Path | None, typer.Option(help="Read variables from this file (default: the nearest .env from here upwards).")
    ] = None,
) -> None:
    """Run the seed notebook's five examples, one on long conversations and one on a workflow that waits for a
    person, checking what each claims."""
    target = resolve_target(ctx)
    if target.cluster:
        raise typer.BadParameter("the demo runs on a standalone Redis", param_hint="'--cluster' / $REDIS_CLUSTER")
    if target.key_prefix != DEFAULT_KEY_PREFIX:
        raise typer.BadParameter("the demo writes only under a key prefix of its own", param_hint="'--key-prefix'")
    from .main import main

    # $REDIS_URL (also from a .env file) is main's to read, after it loads the file.
    main(target.redis_url if target.redis_url_source == "--redis-url" else None, embedded, data_dir, offline, env_file)
