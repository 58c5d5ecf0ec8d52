"""Every fenced ``python`` block of README.md and docs/*.md runs, as a user would run it.

Each block is marked by an HTML comment on the line before it, ``<!-- sample: TAGS -->``:

* ``current`` / ``legacy``: the framework generation(s) it is for; it runs in those.
* ``cluster``: it reads ``$REDIS_CLUSTER_URL`` and gets a private Redis Cluster.
* ``needs-openai-key``: it calls a real model; skipped (the suite never holds a key).
* ``fragment``: not code to run (a signature); skipped. Keep these rare.

A sample runs in a process of its own (a fork of one interpreter that has imported the framework,
so what a sample configures process-wide, such as an OpenTelemetry provider, stays in it), with
top-level ``await`` allowed as in a notebook, against
a private redis-server: ``$REDIS_URL`` (and ``$SOURCE_REDIS_URL``) name it, and a sample may
name no other Redis, so it never touches one the machine already runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import agent_framework_redis_store
from agent_framework_redis_store.testing import EmbeddedRedisCluster

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GENERATIONS = {"current", "legacy"}
TAGS = GENERATIONS | {"cluster", "needs-openai-key", "fragment"}
_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"<!--\s*sample:\s*(.*?)\s*-->")
# A sample reads its Redis from the environment; the only literal URL allowed is the default after it.
_FROM_ENV = re.compile(r"""os\.environ\.get\(\s*"(?:REDIS_URL|SOURCE_REDIS_URL|REDIS_CLUSTER_URL)",\s*"[^"]*"\s*\)""")
_ANY_URL = re.compile(r"(?:redis|rediss|unix)://|localhost|127\.0\.0\.1")
# Runs samples, each in a fork of one interpreter that has imported what samples import (a fresh
# interpreter per sample spent seconds on imports alone). A fork is as fresh as a new interpreter
# for what a sample changes: its globals, os.environ, an OpenTelemetry provider it sets. It runs
# the file (as a coroutine when it awaits at top level) and exits as `python sample.py` would,
# finalizers and atexit included, so leak warnings still show. Protocol: one JSON job per line
# in, its exit code per line out.
_WORKER = """
import ast, asyncio, inspect, json, os, sys, traceback
for name in ("agent_framework", "agent_framework_redis_store", "agent_framework_redis_store.langchain",
             "redis.asyncio", "langchain_core.messages", "langchain_core.runnables.history",
             "langchain_core.language_models.fake_chat_models"):
    try:
        __import__(name)
    except ImportError:
        pass
import agent_framework_redis_store.testing as testing
testing.OfflineChatClient

def run(job):
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        os.dup2(os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    path = job["path"]
    try:
        code = compile(open(path, encoding="utf-8").read(), path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        namespace = {"__name__": "__main__", "__file__": path}
        if code.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(code, namespace))
        else:
            exec(code, namespace)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
    sys.exit(0)

for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        run(json.loads(line))
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""
TIMEOUT = 180


@dataclass(frozen=True)
class Sample:
    document: Path
    line: int  # of the opening fence, 1-based
    marker: str | None  # the comment's text after "sample:", None when the block has none
    code: str

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"

    @property
    def tags(self) -> set[str]:
        # "fragment (a signature, not code to run)": the words before a parenthesis are the tags.
        return set(re.split(r"[\s,]+", (self.marker or "").split("(", 1)[0].strip())) - {""}


def samples() -> list[Sample]:
    found: list[Sample] = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = _MARKER.fullmatch(before.strip())
            line = text.count("\n", 0, match.start()) + 1
            found.append(Sample(document, line, marker.group(1) if marker else None, match.group(1)))
    return found


SAMPLES = samples()
# A docs page may repeat a README sample word for word, to stand on its own: run it once.
UNIQUE = list({sample.code: sample for sample in reversed(SAMPLES)}.values())[::-1]
FIRST = next(sample for sample in SAMPLES if sample.document.name == "README.md")


def _param(sample: Sample) -> object:
    generations = sample.tags & GENERATIONS
    # Marked for one generation only: conftest skips it cleanly in the other.
    marks = [getattr(pytest.mark, g) for g in generations] if len(generations) == 1 else []
    return pytest.param(sample, id=sample.name, marks=marks)


def test_every_python_sample_is_marked_with_known_tags() -> None:
    problems = []
    for sample in SAMPLES:
        if sample.marker is None:
            problems.append(f"{sample.name}: no <!-- sample: ... --> comment on the line before the block")
        elif unknown := sample.tags - TAGS:
            problems.append(f"{sample.name}: unknown tags {sorted(unknown)} (known: {sorted(TAGS)})")
        elif not sample.tags & (GENERATIONS | {"fragment"}):
            problems.append(f"{sample.name}: says neither its generation (current, legacy) nor fragment")
    assert not problems, "\n".join(problems)
    assert len([s for s in SAMPLES if "fragment" in s.tags]) <= 2, "fragments should stay rare"


def test_samples_name_no_redis_of_their_own() -> None:
    """A runnable sample takes its Redis from the environment, so the suite never reaches another one."""
    offenders = [
        sample.name
        for sample in SAMPLES
        if "fragment" not in sample.tags and _ANY_URL.search(_FROM_ENV.sub("", sample.code))
    ]
    assert not offenders, f"samples naming a Redis not read from the environment: {offenders}"


@pytest.fixture(scope="module")
def docs_cluster() -> Iterator[EmbeddedRedisCluster]:
    cluster = EmbeddedRedisCluster(masters=3).start()
    try:
        yield cluster
    finally:
        cluster.stop()


class SampleWorker:
    """The interpreter that forks one process per sample (see ``_WORKER``), started on first use."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None

    def run(self, sample: Sample, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
        path, stdout, stderr = cwd / "sample.py", cwd / "stdout.txt", cwd / "stderr.txt"
        path.write_text(sample.code, encoding="utf-8")
        job = {"path": str(path), "cwd": str(cwd), "env": env, "stdout": str(stdout), "stderr": str(stderr)}
        process = self._started(env)
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(job) + "\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        reply = process.stdout.readline() if ready else ""
        if not reply.strip():
            self.close()  # a sample that hangs, or a worker that died: the next sample gets a new one
            said = stderr.read_text(errors="replace") if stderr.exists() else ""
            pytest.fail(f"{sample.name}: no result within {TIMEOUT} s\n{said}")
        return subprocess.CompletedProcess(
            [str(path)], int(reply), stdout.read_text(errors="replace"), stderr.read_text(errors="replace")
        )

    def _started(self, env: dict[str, str]) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                text=True,
                start_new_session=True,  # its own process group: close() ends a hung sample too
            )
        return self._process

    def close(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None


@pytest.fixture(scope="module")
def worker() -> Iterator[SampleWorker]:
    running = SampleWorker()
    try:
        yield running
    finally:
        running.close()


def sample_env(redis_url: str, cluster_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "REDIS_"))}
    env |= {"REDIS_URL": redis_url, "SOURCE_REDIS_URL": redis_url, "TRACE_ID_KEY": "a-key-of-the-test-suite-0123456789"}
    if cluster_url is not None:
        env["REDIS_CLUSTER_URL"] = cluster_url
    # The package under test, wherever it was imported from (an installed copy, or src/ on PYTHONPATH,
    # which a relative path would lose in the sample's own working directory).
    package_root = str(Path(agent_framework_redis_store.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def check_ran(sample: Sample, result: subprocess.CompletedProcess[str]) -> None:
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, f"{sample.name} failed (exit {result.returncode})\n{output}"
    # Left open or left unawaited, a sample teaches a leak.
    for leak in ("never awaited", "Unclosed", "unclosed", "Task was destroyed"):
        assert leak not in result.stderr, f"{sample.name}: {leak!r}\n{output}"


@pytest.mark.parametrize("sample", [_param(s) for s in UNIQUE])
def test_sample_runs(
    sample: Sample, worker: SampleWorker, redis_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from agent_framework_redis_store import GENERATION

    if sample.marker is None:
        pytest.fail(f"{sample.name} has no <!-- sample: ... --> marker")
    if "fragment" in sample.tags:
        pytest.skip(f"{sample.name} is marked as a fragment: {sample.marker}")
    if "needs-openai-key" in sample.tags:
        pytest.skip(f"{sample.name} calls a real OpenAI model (needs an API key)")
    if GENERATION not in sample.tags:
        pytest.skip(f"{sample.name} is a {'/'.join(sorted(sample.tags & GENERATIONS))} sample")
    cluster_url = None
    if "cluster" in sample.tags:
        cluster: EmbeddedRedisCluster = request.getfixturevalue("docs_cluster")
        cluster.flushall()
        cluster_url = cluster.url
    result = worker.run(sample, sample_env(redis_url, cluster_url), tmp_path)
    check_ran(sample, result)
    if sample == FIRST:
        # The second run's model saw only what came back from Redis (a fresh session from to_dict()).
        assert "Alice" in result.stdout
        assert "pizza" in result.stdout


def test_the_readme_opens_with_the_1x_example() -> None:
    """A bare install gets agent-framework-core 1.x, so the README's first sample is for 1.x (and runs above)."""
    assert FIRST.tags & GENERATIONS == {"current"}
    assert "RedisChatHistoryProvider" in FIRST.code
    assert "asyncio.run(main())" in FIRST.code  # a whole script: runs with `python`, no notebook needed


def test_samples_run_the_package_under_test(worker: SampleWorker, redis_url: str, tmp_path: Path) -> None:
    """Samples import the package this suite tests, not another installed copy."""
    code = "import agent_framework_redis_store as m\nprint(m.__file__)\n"
    sample = Sample(ROOT / "README.md", 0, "current legacy", code)
    result = worker.run(sample, sample_env(redis_url), tmp_path)
    check_ran(sample, result)
    assert Path(result.stdout.strip()) == Path(agent_framework_redis_store.__file__).resolve()
