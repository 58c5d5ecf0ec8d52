"""The ``redis-chat-store`` operator command line (typer + rich).

Each command group lives in its own module and is registered here; they use only the
package's public API.
"""

from __future__ import annotations

import typer

from . import __version__
from .cli_threads import register as register_threads
from .demo import demo

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
app.command("demo")(demo)


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
