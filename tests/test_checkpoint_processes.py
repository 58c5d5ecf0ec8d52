"""Workflows checkpointed to Redis outlive their process: paused for a person, or killed mid-run.

Each process is a real subprocess (``tests/checkpoint_worker.py``) of this test's environment,
so both framework generations run it; nothing passes between them but Redis and what a user
would carry (the workflow's name, and in the legacy generation its instance id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from agent_framework_redis_store import GENERATION, RedisCheckpointStorage

ROOT = Path(__file__).resolve().parent.parent
CURRENT = GENERATION == "current"
# Each process imports the framework; a busy 2-core machine may take a while.
DEADLINE = 120


async def start(request: dict[str, Any]) -> asyncio.subprocess.Process:
    command = [sys.executable, "-m", "tests.checkpoint_worker", json.dumps(request)]
    return await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT
    )


async def run(request: dict[str, Any]) -> dict[str, Any]:
    """Run one worker process to its end; its JSON report."""
    process = await start(request)
    out, err = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_a_workflow_paused_for_a_person_is_answered_and_finished_by_another_process(redis_url: str) -> None:
    common = {"redis_url": redis_url, "key_prefix": "hitl", "key": os.urandom(32).hex()}

    paused = await run({**common, "action": "pause", "order": "order 17"})
    assert paused["draft"] == "draft refund for order 17"

    answered = await run({**common, "action": "answer", "name": paused["name"], "answer": "approved"})
    assert answered["pid"] != paused["pid"]
    assert answered["pending"] == [paused["request_id"]]  # the request the first process left waiting
    assert answered["outputs"] == ["draft refund for order 17: approved"]  # its draft, from the checkpoint

    async with RedisCheckpointStorage(redis_url, key_prefix="hitl") as storage:
        # The second process checkpointed its own supersteps after the one it resumed from.
        ids = await storage.list_checkpoint_ids(workflow_name=paused["name"])
        assert ids.index(answered["resumed_from"]) < len(ids) - 1


async def test_a_workflow_killed_between_two_supersteps_continues_from_its_latest_checkpoint(redis_url: str) -> None:
    common = {"redis_url": redis_url, "key_prefix": "crash"}

    crashing = await start({**common, "action": "crash"})
    try:
        line = await asyncio.wait_for(crashing.stdout.readline(), DEADLINE)  # type: ignore[union-attr]
        assert line, (await crashing.stderr.read()).decode()[-3000:]  # type: ignore[union-attr]
        saved = json.loads(line)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have died on its own: its stderr says why
            crashing.send_signal(signal.SIGKILL)
        await asyncio.wait_for(crashing.wait(), DEADLINE)
    assert crashing.returncode == -signal.SIGKILL

    resumed = await run({**common, "action": "resume", "name": saved["name"]})
    assert resumed["resumed_from"] == saved["saved"]  # the newest checkpoint is the one saved before the kill
    killed, again = saved["pid"], resumed["pid"]
    # The first step ran once, in the killed process; the other two ran after the restart.
    assert resumed["outputs"] == [f"start first@{killed} second@{again} last@{again}"]
