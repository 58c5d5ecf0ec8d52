"""The ``redis-chat-store`` app (typer + rich): its global options and command groups.

Each command group lives in its own module and is registered here; they use only the
package's public API.
"""

from __future__ import annotations

import typer

from agent_framework_redis_store import __version__

from .checkpoints import register as register_checkpoints
from .demo import demo
from .help import HelpGroup
from .migrate import register as register_migrate
from .target import GlobalCluster, GlobalKeyPrefix, GlobalRedisUrl
from .threads import register as register_threads

app = typer.Typer(
    name="redis-chat-store",
    help="Operate Agent Framework conversations and workflow checkpoints stored in Redis.",
    no_args_is_help=True,
    add_completion=False,
    cls=HelpGroup,
    rich_markup_mode=None,  # plain help: see help.py
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"redis-chat-store {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
    redis_url: GlobalRedisUrl = None,
    key_prefix: GlobalKeyPrefix = None,
    cluster: GlobalCluster = False,
) -> None:
    """Operate Agent Framework conversations stored in Redis.

    --redis-url, --key-prefix and --cluster go here or after the command; given twice, the one
    nearer the command wins.
    """
    # Nothing to keep: target.resolve_target reads these options from the command line's levels.


register_threads(app)
register_checkpoints(app)
register_migrate(app)
app.command("demo")(demo)
