"""The package's shape: one keyspace, layers that import downwards only, a library without its CLI."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
import redis.asyncio

import agent_framework_redis_store as package
from agent_framework_redis_store import Keyspace, RedisChatMessageStore, RedisThreadRegistry

from .scripted import user_message

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "agent_framework_redis_store"
# Each layer may import only the layers before it.
LAYERS = ["_core", "_adapters", "_ops", "_cli"]


# -- clear() removes every key of the thread ------------------------------------------------


async def _thread_with_every_key(redis_url: str, raw: redis.asyncio.Redis, thread_id: str) -> None:
    """A thread with messages, labels, batch tokens, fingerprints, a session snapshot and a registry entry."""
    async with RedisChatMessageStore(redis_url, thread_id=thread_id, labels={"user": "alice"}) as store:
        await store.add_messages([user_message("one")])
        await store.add_new_messages([user_message("two")])
    keys = Keyspace().thread(thread_id)
    await raw.set(keys.session, json.dumps({"type": "session", "session_id": thread_id, "state": {}}))
    await raw.set(keys.compacting, "a compaction in progress")
    # The batches set: an unregistered thread's batch tokens, or a registered one's from before 0.2.
    await raw.zadd(keys.batches, {b"\x00" * 8: 1})
    assert await raw.exists(*keys.owned) == len(keys.owned)
    assert await raw.zscore(Keyspace().registry, thread_id) is not None


async def _assert_only_other_thread_left(raw: redis.asyncio.Redis, gone: str, kept: str) -> None:
    keys = Keyspace().thread(gone)
    assert await raw.exists(*keys.owned) == 0
    assert await raw.zrange(Keyspace().registry, 0, -1) == [kept.encode()]
    left = {key.decode() if isinstance(key, bytes) else key for key in await raw.keys("*")}
    alice = Keyspace().label_index("user", "alice")
    assert left == {*Keyspace().thread(kept).owned, Keyspace().registry, Keyspace().labels_complete, alice}
    assert await raw.zrange(alice, 0, -1) == [kept.encode()]  # gone from its label's index too


async def test_store_clear_leaves_no_key_of_the_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    await _thread_with_every_key(redis_url, raw, "gone")
    await _thread_with_every_key(redis_url, raw, "kept")
    async with RedisChatMessageStore(redis_url, thread_id="gone") as store:
        await store.clear()
    await _assert_only_other_thread_left(raw, "gone", "kept")


async def test_registry_delete_leaves_no_key_of_the_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    await _thread_with_every_key(redis_url, raw, "gone")
    await _thread_with_every_key(redis_url, raw, "kept")
    async with RedisThreadRegistry(redis_url) as registry:
        assert await registry.delete(["gone"]) == 1
    await _assert_only_other_thread_left(raw, "gone", "kept")


@pytest.mark.current
async def test_provider_clear_leaves_no_key_of_the_session(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework import AgentSession

    from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore

    await _thread_with_every_key(redis_url, raw, "kept")
    async with RedisChatHistoryProvider(redis_url, labels={"user": "alice"}) as history:
        await history.save_messages("gone", [user_message("one"), user_message("two")])
        sessions = RedisSessionStore(redis_client=history.redis_client)
        await sessions.set("gone", AgentSession(session_id="gone"))
        keys = Keyspace().thread("gone")
        assert await raw.exists(keys.messages, keys.meta, keys.fingerprints, keys.session) == 4
        await history.clear("gone")
        assert await sessions.get("gone") is None
    await _assert_only_other_thread_left(raw, "gone", "kept")


# -- layers and imports ---------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (anywhere in the file), as dotted names under the package."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        module = module.rsplit(".", 1)[0]
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("agent_framework_redis_store"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("agent_framework_redis_store"))
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_a_layer_imports_only_the_layers_below_it(module: str) -> None:
    own = _layer(module)
    assert own is not None
    above = {target for target in _imports(MODULES[module]) if (layer := _layer(target)) is not None and layer > own}
    assert not above, f"{module} (layer {LAYERS[own]}) imports {sorted(above)}"


def test_the_cli_and_the_demo_use_only_the_public_api() -> None:
    for module, path in MODULES.items():
        if _layer(module) == LAYERS.index("_cli"):
            private = {t for t in _imports(path) if _layer(t) is not None and _layer(t) != LAYERS.index("_cli")} | {
                t for t in _imports(path) if t.startswith("agent_framework_redis_store._testing")
            }
            assert not private, f"{module} imports private modules {sorted(private)}"


def test_there_are_no_import_cycles() -> None:
    graph = {
        module: {target for target in _imports(path) if target in MODULES and target != module}
        for module, path in MODULES.items()
    }
    # The package __init__ re-exports everything: only edges between implementation modules count.
    graph = {m: {t for t in targets if _layer(t) is not None} for m, targets in graph.items() if _layer(m) is not None}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in graph.get(module, ()):
            visit(target, [*path, module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_public_names_are_shown_as_the_package_s() -> None:
    for name in package.__all__:
        if name in {"GENERATION", "__version__", "RedisChatHistoryProvider", "RedisSessionStore"}:
            continue
        assert getattr(package, name).__module__ == "agent_framework_redis_store", name


# -- a library without its CLI --------------------------------------------------------------


def test_the_bare_install_needs_only_the_framework_and_redis() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {_name(d) for d in declared} == {"agent-framework-core", "redis"}
    # The installed distribution's own metadata, as pip sees it.
    requires = distribution("agent-framework-redis-store").requires or []
    assert {_name(r) for r in requires if "extra ==" not in r} == {"agent-framework-core", "redis"}
    cli = {_name(r) for r in requires if re.search(r"extra\s*==\s*['\"]cli['\"]", r)}
    assert {"typer", "rich"} <= cli


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return match.group(0)


def test_the_package_ships_its_types() -> None:
    assert (PACKAGE / "py.typed").is_file()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)


def test_using_the_library_loads_no_cli_code() -> None:
    result = _python(
        "import sys, agent_framework_redis_store as p\n"
        "p.RedisChatMessageStore('redis://127.0.0.1:1', thread_id='t')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'typer', 'rich', 'dotenv', 'click'}"
        " or m.startswith('agent_framework_redis_store._cli'))\n"
        "print(loaded)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_command_without_the_cli_extra_says_which_extra_to_install() -> None:
    # As if typer were not installed: the import fails, as it does in a bare install.
    result = _python("import sys; sys.modules['typer'] = None\nfrom agent_framework_redis_store._cli import run\nrun()")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "redis-chat-store needs the [cli] extra: pip install 'agent-framework-redis-store[cli]' (missing: typer)"
    ]


def test_the_threads_commands_do_not_load_the_demo() -> None:
    result = _python(
        "import sys\n"
        "from agent_framework_redis_store._cli.app import app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'dotenv', 'agent_framework'}"
        " or m.endswith('demo.main') or m.endswith('_testing.embedded')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
