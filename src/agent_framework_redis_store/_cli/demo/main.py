"""The work of ``redis-chat-store demo``: the seed notebook's five examples, one on long
conversations and one on a workflow that waits for a person, end to end, on any machine.

It picks a Redis (``--redis-url`` / ``REDIS_URL``, else a local server on 6379, else a
private embedded ``redis-server``) and a model (OpenAI or Azure OpenAI when a key is set,
else the offline model), runs the examples with the installed framework generation, and
exits non-zero if any example's claim does not hold. It only ever touches keys under its
own per-run prefix and deletes them before it exits.

Exit codes: 0 every claim held, 1 a claim failed, 2 a setup problem (printed with a fix).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import signal
import sys
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit

import typer
from dotenv import find_dotenv, load_dotenv
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent_framework_redis_store import (
    GENERATION,
    ConnectionSettings,
    RedisStoreError,
    RedisUnavailableError,
    redact_url,
)
from agent_framework_redis_store.testing import EmbeddedRedis, RedisBinaryNotFoundError

from .examples import EXAMPLES, DemoRun, ExampleResult, run_examples

__all__ = ["DemoSetupError", "choose_model", "choose_redis", "default_data_dir", "main"]

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
KEY_PREFIX = "redis-chat-store-demo"


class DemoSetupError(Exception):
    """Something a newcomer must fix before the demo can run: one line of problem, one of fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


# -- Redis ---------------------------------------------------------------------------------------


@dataclass
class DemoRedis:
    """The Redis the demo uses. ``url`` may hold credentials: print ``description``."""

    url: str = field(repr=False)
    description: str
    server: EmbeddedRedis | None = None
    lock: IO[str] | None = field(default=None, repr=False)

    def restart(self) -> str | None:
        """Restart an embedded server for real (same port and data); None for anyone else's Redis."""
        if self.server is None:
            return None
        before = self.server.pid
        self.server.restart()
        return (
            f"Restarted the embedded redis-server: pid {before} stopped, pid {self.server.pid} started "
            f"and reloaded its append-only file from {self.server.data_dir}."
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.lock is not None:
            self.lock.close()


def default_data_dir() -> Path:
    """Where the embedded server keeps its append-only file: the user's cache directory."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "redis-chat-store" / "demo-redis"


def _display(url: str) -> str:
    """``url`` without credentials, even when it does not parse."""
    try:
        return redact_url(url)
    except ValueError:  # e.g. a port that is not a number
        return re.sub(r"//[^/@]*@", "//***@", url)


def _check_url(url: str, source: str) -> None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    problem = ""
    if scheme not in ("redis", "rediss", "unix"):
        problem = "it must start with redis://, rediss:// or unix://"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            problem = "its port is not a number from 1 to 65535"
        else:
            if scheme != "unix" and not parts.hostname:
                problem = "it names no host"
    if problem:
        raise DemoSetupError(
            f"{source} is not a valid Redis URL: {_display(url)!r}: {problem}",
            "use redis://[[username]:password@]host[:port][/db], e.g. redis://localhost:6379/0",
        )


async def _ping(url: str, wait: float) -> str:
    """The server's version; raises redis-py's error when it does not answer within ``wait`` seconds."""
    client = ConnectionSettings(
        redis_url=url, retry=Retry(NoBackoff(), 0), socket_timeout=wait, socket_connect_timeout=wait
    ).create_client()
    try:
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await client.aclose()


async def _connect(url: str, source: str) -> str:
    where = redact_url(url)
    try:
        return await _ping(url, wait=5.0)
    except AuthenticationError as err:
        given = "in REDIS_URL" if source == "REDIS_URL" else "given to --redis-url"
        if urlsplit(url).password is None:
            problem = f"Redis at {where} requires a password and the URL has none"
        else:
            problem = f"Redis at {where} rejected the password ({err})"
        raise DemoSetupError(
            problem, f"put the right password in the URL {given}: redis://:PASSWORD@host:port/0"
        ) from err
    except (RedisError, OSError) as err:
        raise DemoSetupError(
            f"Cannot reach Redis at {where} ({type(err).__name__}: {err})",
            f"start that Redis, correct {source}, or pass --embedded to use a private redis-server instead",
        ) from err


def _lock_data_dir(data_dir: Path) -> IO[str]:
    # Two servers appending to one append-only file would corrupt it.
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "demo.lock", "w")  # noqa: SIM115 - held until the server stops
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        lock.close()
        raise DemoSetupError(
            f"Another demo is using the data directory {data_dir}", "wait for it to finish, or pass --data-dir DIR"
        ) from err
    return lock


def _start_embedded(data_dir: Path, why: str) -> DemoRedis:
    try:
        server = EmbeddedRedis(data_dir, appendonly=True)
    except RedisBinaryNotFoundError as err:
        raise DemoSetupError(
            f"{why}, and no redis-server binary is available",
            "pip install 'agent-framework-redis-store[embedded]' (it bundles redis-server), install Redis "
            "(e.g. apt-get install redis-server), or set REDIS_URL to a Redis you have",
        ) from err
    lock = _lock_data_dir(data_dir)
    try:
        server.start()
    except (RuntimeError, TimeoutError, OSError) as err:
        lock.close()
        raise DemoSetupError(
            f"The embedded redis-server did not start ({err})", f"check {data_dir} or pass --data-dir DIR"
        ) from err
    return DemoRedis(
        server.url,
        f"a private embedded redis-server at {server.url} ({server.binary}); "
        f"append-only persistence in {data_dir}; it stops when the demo ends",
        server,
        lock,
    )


async def choose_redis(
    redis_url: str | None,
    *,
    embedded: bool,
    data_dir: Path,
    source: str = "--redis-url",
    local_url: str = LOCAL_REDIS_URL,
) -> DemoRedis:
    """``redis_url`` if given; else ``local_url`` if it answers; else (or with ``embedded``) a private server.

    ``source`` names where ``redis_url`` came from (``--redis-url`` or ``REDIS_URL``) in errors.
    """
    if redis_url and not embedded:
        _check_url(redis_url, source)
        server_version = await _connect(redis_url, source)
        return DemoRedis(redis_url, f"{redact_url(redis_url)} (from {source}), Redis {server_version}")
    if embedded:
        return _start_embedded(data_dir, "--embedded was given")
    try:
        server_version = await _ping(local_url, wait=0.5)
    except AuthenticationError:
        why = f"The Redis at {local_url} needs a password (set REDIS_URL to use it)"
    except (RedisError, OSError):
        why = f"Nothing answers at {local_url}"
    else:
        return DemoRedis(local_url, f"the local Redis {server_version} at {local_url}")
    redis = _start_embedded(data_dir, why)
    redis.description = f"{why}; using {redis.description}"
    return redis


# -- the model -------------------------------------------------------------------------------------


@dataclass
class DemoModel:
    client: Any
    description: str
    offline: bool


def choose_model(*, offline: bool, required: bool = False) -> DemoModel:
    """OpenAI or Azure OpenAI when a key is set (and not ``offline``), else the offline model.

    ``required``: no key is a setup problem rather than a reason to go offline.
    """
    env = os.environ
    endpoint = env.get("AZURE_OPENAI_ENDPOINT")
    api_key = (env.get("AZURE_OPENAI_API_KEY") or env.get("OPENAI_API_KEY")) if endpoint else env.get("OPENAI_API_KEY")
    if required and not offline and not api_key:
        raise DemoSetupError(
            "no model to summarize with: OPENAI_API_KEY (or AZURE_OPENAI_API_KEY) is not set",
            "set it (environment or .env), or pass --offline",
        )
    if offline or not api_key:
        from agent_framework_redis_store.testing import (
            OfflineChatClient,  # imports the framework: only when the demo runs
        )

        why = "--offline was given" if offline else "no OPENAI_API_KEY or AZURE_OPENAI_API_KEY is set"
        return DemoModel(
            OfflineChatClient(),
            f"OFFLINE: a scripted model that answers from the conversation history ({why})",
            offline=True,
        )
    if endpoint:
        model = env.get("AZURE_OPENAI_CHAT_DEPLOYMENT_NAME") or "gpt-4o"
        where = f"Azure OpenAI deployment {model!r} at {redact_url(endpoint)}"
    else:
        model = env.get("OPENAI_CHAT_MODEL_ID") or "gpt-4o-mini"
        base_url = env.get("OPENAI_BASE_URL")
        where = f"OpenAI model {model!r}" + (f" at {redact_url(base_url)}" if base_url else "")
    options = {
        "model": model,
        "api_key": api_key,
        # An empty OPENAI_BASE_URL (e.g. from a copied .env) would otherwise reach the SDK as "".
        "base_url": env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
        "azure_endpoint": endpoint,
        "api_version": env.get("AZURE_OPENAI_API_VERSION") or "2024-10-21",
    }
    try:
        if GENERATION == "legacy":
            from .legacy import openai_chat_client
        else:
            from .current import openai_chat_client
        client = openai_chat_client(**options)
    except ModuleNotFoundError as err:
        raise DemoSetupError(
            f"An OpenAI key is set but the OpenAI client is not installed ({err})",
            "pip install agent-framework-openai, or pass --offline",
        ) from err
    return DemoModel(client, where, offline=False)


def explain(error: BaseException) -> DemoSetupError | None:
    """A one-line problem and fix for errors a newcomer meets mid-run (bad key, lost Redis)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DemoSetupError):
            return seen
        status = getattr(seen, "status_code", None)
        if status == 401 and type(seen).__module__.startswith("openai"):
            return DemoSetupError(
                "OpenAI rejected the API key (401 Unauthorized)",
                "set a valid OPENAI_API_KEY (or AZURE_OPENAI_API_KEY) in .env or the environment, "
                "or pass --offline to use the offline model",
            )
        if type(seen).__name__ == "APIConnectionError" and type(seen).__module__.startswith("openai"):
            return DemoSetupError(
                f"Cannot reach the OpenAI API ({seen})", "check OPENAI_BASE_URL and the network, or pass --offline"
            )
        if isinstance(seen, RedisUnavailableError):
            return DemoSetupError(str(seen), "check that Redis is running, then run the demo again")
        if isinstance(seen, RedisStoreError) and "credentials" in str(seen):
            return DemoSetupError(str(seen), "put the right password in REDIS_URL")
        seen = seen.__cause__ or seen.__context__
    return None


# -- the run ---------------------------------------------------------------------------------------


async def _delete_leftovers(redis: DemoRedis, key_prefix: str) -> int:
    """Delete any key under this run's prefix (an example that failed half-way may leave some)."""
    client = ConnectionSettings(redis_url=redis.url).create_client()
    try:
        keys = [key async for key in client.scan_iter(match=f"{key_prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()


def _chats(client: Any, redis: DemoRedis, key_prefix: str) -> Any:
    if GENERATION == "legacy":
        from .legacy import LegacyChats

        return LegacyChats(client, redis.url, key_prefix)
    from .current import CurrentChats

    return CurrentChats(client, redis.url, key_prefix)


def _summary(console: Console, results: list[ExampleResult], redis: DemoRedis, model: DemoModel, api: str) -> bool:
    table = Table(title="Summary", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Example")
    table.add_column("Result")
    table.add_column("Claims checked", overflow="fold")
    for number, result in enumerate(results, 1):
        verdict = "[green]passed[/]" if result.ok else "[bold red]FAILED[/]"
        claims = "\n".join(f"{'✓' if c.ok else '✗'} {escape(c.text)}" for c in result.claims)
        table.add_row(str(number), escape(result.title), verdict, claims)
    console.print()
    console.print(table)
    console.print(f"Framework: {_framework()} via {escape(api)}", highlight=False)
    console.print(f"Redis:     {escape(redis.description)}", highlight=False)
    console.print(f"Model:     {escape(model.description)}", highlight=False)
    failed = sum(not c.ok for r in results for c in r.claims)
    if failed or len(results) < len(EXAMPLES):
        console.print(f"[bold red]FAILED: {failed} claim(s) did not hold.[/]")
        return False
    console.print(f"[bold green]All {len(EXAMPLES)} examples passed: every claim held.[/]")
    return True


def _framework() -> str:
    return f"{GENERATION} generation (agent-framework-core {version('agent-framework-core')})"


async def _run(
    console: Console, redis_url: str | None, source: str, embedded: bool, data_dir: Path, offline: bool
) -> bool:
    model = choose_model(offline=offline)
    redis = await choose_redis(redis_url, embedded=embedded, data_dir=data_dir, source=source)
    key_prefix = f"{KEY_PREFIX}:{uuid.uuid4().hex[:8]}"
    try:
        console.print(f"Framework: {_framework()}", highlight=False)
        console.print(f"Redis:     {escape(redis.description)}", highlight=False)
        console.print(f"Model:     {escape(model.description)}", highlight=False)
        console.print(f"Keys:      only under {key_prefix}:*, deleted before the demo exits", highlight=False)
        chats = _chats(model.client, redis, key_prefix)

        async def restart() -> str | None:
            return await asyncio.to_thread(redis.restart)

        run = DemoRun(chats=chats, console=console, offline=model.offline, restart_redis=restart)
        try:
            await run_examples(run)
        finally:
            with contextlib.suppress(RedisError, OSError):
                left = await _delete_leftovers(redis, key_prefix)
                if left:
                    console.print(f"[dim]Deleted {left} leftover key(s) under {key_prefix}:*[/]")
        return _summary(console, run.results, redis, model, chats.api)
    finally:
        redis.stop()


def _fail(console: Console, error: DemoSetupError) -> NoReturn:
    console.print(f"[bold red]Error:[/] {escape(error.problem)}", highlight=False)
    console.print(f"[bold]Fix:[/]   {escape(error.fix)}", highlight=False)
    raise typer.Exit(2)


def main(redis_url: str | None, embedded: bool, data_dir: Path | None, offline: bool, env_file: Path | None) -> None:
    """The ``demo`` command's work (see ``_cli/demo/__init__.py`` for its options)."""
    console = Console(highlight=False)
    load_dotenv(env_file or find_dotenv(usecwd=True), override=False)
    # A SIGTERM must still stop the embedded server and delete the demo's keys.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        source = "--redis-url" if redis_url else "REDIS_URL"
        url = redis_url or os.environ.get("REDIS_URL") or None
        # Absolute: redis-server changes into its --dir before it opens its files.
        data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        ok = asyncio.run(_run(console, url, source, embedded, data_dir, offline))
    except Exception as err:
        explained = explain(err)
        if explained is None:
            raise
        _fail(console, explained)
    if not ok:
        raise typer.Exit(1)
