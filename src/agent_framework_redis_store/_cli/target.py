"""Where a command works: ``--redis-url``, ``--key-prefix`` and ``--cluster``, before or after the command.

Each may be given to ``redis-chat-store`` itself, to a group (``threads``, ``migrate``) or to
the command, and the one nearest the command wins::

    $REDIS_URL, $REDIS_CLUSTER  <  redis-chat-store --redis-url  <  threads --redis-url  <  threads list --redis-url

Every level declares the options, so that typer accepts them where they stand; only
``resolve_target`` reads them, from the command up to the root. The environment feeds the
root's options only: a level below that was not given an option has None, never a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import typer

from agent_framework_redis_store import redact_url

from .console import fail

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "Cluster",
    "GlobalCluster",
    "GlobalKeyPrefix",
    "GlobalRedisUrl",
    "KeyPrefix",
    "RedisUrl",
    "Target",
    "in_cli_terms",
    "resolve_target",
]

DEFAULT_KEY_PREFIX = "chat_messages"

# -- the root's options: ``redis-chat-store --redis-url URL threads list`` -----------------------

GlobalRedisUrl = Annotated[
    str | None,
    typer.Option(
        "--redis-url", metavar="URL", envvar="REDIS_URL", help="Redis URL (default: $REDIS_URL).", show_default=False
    ),
]
GlobalKeyPrefix = Annotated[
    str | None,
    typer.Option(
        "--key-prefix", metavar="PREFIX", help=f"Key prefix (default: {DEFAULT_KEY_PREFIX}).", show_default=False
    ),
]
GlobalCluster = Annotated[
    bool,
    typer.Option(
        "--cluster/--no-cluster", envvar="REDIS_CLUSTER", help="The Redis URL names a node of a Redis Cluster."
    ),
]

# -- a group's and a command's: ``threads list --redis-url URL`` (None: not given here) -------------

RedisUrl = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        metavar="URL",
        help="Redis URL (default: one given before the command, else $REDIS_URL).",
        show_default=False,
    ),
]
KeyPrefix = Annotated[
    str | None,
    typer.Option(
        "--key-prefix",
        metavar="PREFIX",
        help=f"Key prefix (default: one given before the command, else {DEFAULT_KEY_PREFIX}).",
        show_default=False,
    ),
]
Cluster = Annotated[
    bool | None,
    typer.Option(
        "--cluster/--no-cluster",
        help="The Redis URL names a node of a Redis Cluster "
        "(default: as given before the command, else $REDIS_CLUSTER).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Target:
    """The Redis and key prefix a command works on, as resolved from every level of the command line."""

    redis_url: str | None
    """None when no level was given one and $REDIS_URL is unset."""
    redis_url_source: Literal["--redis-url", "REDIS_URL"] | None
    """Where ``redis_url`` came from, to name it in messages."""
    key_prefix: str
    cluster: bool

    def require_url(self) -> str:
        """The Redis URL; exits 1 with one line when there is none."""
        if not self.redis_url:
            fail("no Redis to connect to: pass --redis-url or set REDIS_URL")
        return self.redis_url

    def describe_url(self) -> str:
        """The Redis URL with its credentials redacted, for messages."""
        return redact_url(self.redis_url or "")

    def describe(self) -> str:
        """``key prefix 'p' at redis://host:port/db`` (credentials redacted), for questions and reports."""
        return f"key prefix {self.key_prefix!r} at {self.describe_url()}"

    def in_cli_terms(self, message: str) -> str:
        """``message`` of the library, naming this command line's options instead of Python parameters."""
        return in_cli_terms(message, url_flag=self.redis_url_source or "--redis-url")


def resolve_target(ctx: typer.Context) -> Target:
    """``--redis-url``, ``--key-prefix`` and ``--cluster`` from the level nearest the command that has them."""
    url, url_source = _nearest(ctx, "redis_url")
    prefix, _ = _nearest(ctx, "key_prefix")
    if prefix == "":
        # Given, and empty: not the default, which an operator who typed it did not ask for.
        fail(f"--key-prefix must not be empty (leave it out for the default, {DEFAULT_KEY_PREFIX})")
    cluster, _ = _nearest(ctx, "cluster")
    source: Literal["--redis-url", "REDIS_URL"] | None = None
    if url:
        source = "REDIS_URL" if url_source == "ENVIRONMENT" else "--redis-url"
    return Target(url or None, source, prefix or DEFAULT_KEY_PREFIX, bool(cluster))


def _nearest(ctx: typer.Context, name: str) -> tuple[Any, str | None]:
    """(value, source) of option ``name`` at the nearest level where it was given (or came from the environment)."""
    level: Any = ctx
    while level is not None:
        source = level.get_parameter_source(name)
        if source is not None and source.name != "DEFAULT":
            return level.params[name], source.name
        level = level.parent
    return None, None


# The library's messages name its Python parameters; the command line has options instead. The
# hints that only a Python caller can follow go; a name becomes its option.
_CLI_TERMS = (
    (re.compile(r",? or pass (?:them as )?password= and username="), ""),
    (re.compile(r" or pass password="), ""),
    (re.compile(r" or as db="), ""),
    (re.compile(r"\bdb must be 0 with cluster=True"), "the database in {url} must be 0 with --cluster"),
    (re.compile(r"(?<![\w/@:.-])redis_url\b"), "{url}"),
    (re.compile(r"(?<![\w/@:.-])key_prefix\b"), "--key-prefix"),
    (re.compile(r"\bcluster=True\b"), "--cluster"),
)
# Quoted text (a key, a thread id, a URL as repr shows them) is data: it stays as it is.
_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def in_cli_terms(message: str, *, url_flag: str = "--redis-url") -> str:
    """``message`` naming options (``--redis-url``) where it names parameters (``redis_url``), outside quotes."""
    parts = _QUOTED.split(message)
    for index in range(0, len(parts), 2):
        for pattern, replacement in _CLI_TERMS:
            parts[index] = pattern.sub(replacement.replace("{url}", url_flag), parts[index])
    return "".join(parts)
