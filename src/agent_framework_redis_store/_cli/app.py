"""The ``redis-chat-store`` app (typer + rich): its global options and command groups.

Each command group lives in its own module and is registered here; they use only the
package's public API.
"""

from __future__ import annotations

import typer

from agent_framework_redis_store import __version__

from .demo import demo
from .migrate import register as register_migrate
from .threads import register as register_threads

app = typer.Typer(
    name="redis-chat-store",
    help="Operate Agent Framework conversations stored in Redis.",
    no_args_is_help=True,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"redis-chat-store {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
    cluster: bool = typer.Option(
        False, "--cluster", envvar="REDIS_CLUSTER", help="The Redis URL names a node of a Redis Cluster."
    ),
) -> None:
    """Operate Agent Framework conversations stored in Redis."""
    ctx.obj = {"cluster": cluster}


register_threads(app)
register_migrate(app)
app.command("demo")(demo)
