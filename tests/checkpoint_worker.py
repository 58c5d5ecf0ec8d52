"""One application process that runs, or resumes, a checkpointed workflow.

Used by ``tests/test_checkpoint_processes.py`` as a subprocess in the same environment::

    python -m tests.checkpoint_worker '{"redis_url": ..., "action": "pause", ...}'

Actions (each prints one JSON line on stdout):

- ``pause``: runs the refund workflow until it asks for approval, then exits.
- ``answer``: finds the paused refund workflow by name with ``get_latest``, answers its
  request with ``answer`` and runs it to its end.
- ``crash``: runs the three-step chain; when the checkpoint after its first step is saved, prints
  ``{"saved": ID, ...}`` and blocks forever, so the test can kill it between two supersteps.
- ``resume``: loads the chain's latest checkpoint and runs it to its end.

The workflow name is ``name`` when given (legacy checkpoints are filed under the workflow
instance's id, which the first process reports), else the workflow's name.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from agent_framework_redis_store import GENERATION, AESGCMEncryption, RedisCheckpointStorage

from .checkpoint_workflow import chain_workflow, refund_workflow

CURRENT = GENERATION == "current"


def say(**fields: Any) -> None:
    print(json.dumps({"pid": os.getpid(), **fields}), flush=True)


class StopsAfterFirstStep(RedisCheckpointStorage):
    """Saves for real; after the checkpoint that follows the chain's first step, reports it and hangs."""

    async def save(self, checkpoint: Any) -> str:
        return await self._after_first_step(checkpoint, await super().save(checkpoint))

    async def save_checkpoint(self, checkpoint: Any) -> str:  # the legacy framework's spelling
        return await self._after_first_step(checkpoint, await super().save_checkpoint(checkpoint))

    async def _after_first_step(self, checkpoint: Any, checkpoint_id: str) -> str:
        if "first" in checkpoint.messages:  # the first step has run and sent its message on
            say(saved=checkpoint_id, name=checkpoint.workflow_name if CURRENT else checkpoint.workflow_id)
            await asyncio.Event().wait()  # until SIGKILL
        return checkpoint_id


def storage_options(request: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"key_prefix": request["key_prefix"], "compression": "zlib"}
    if "key" in request:
        options["encryption"] = AESGCMEncryption({"k1": bytes.fromhex(request["key"])}, current="k1")
    return options


async def resume(workflow: Any, storage: RedisCheckpointStorage, checkpoint_id: str, responses: Any) -> Any:
    """Run ``workflow`` from a checkpoint, answering ``responses`` (None: none), to its end."""
    if CURRENT:
        return await workflow.run(checkpoint_id=checkpoint_id, checkpoint_storage=storage, responses=responses)
    restored = await workflow.run(checkpoint_id=checkpoint_id, checkpoint_storage=storage)
    # The legacy framework re-emits the pending requests on restore; answers go in afterwards.
    return await workflow.send_responses(responses) if responses else restored


async def main(request: dict[str, Any]) -> None:
    action, options = request["action"], storage_options(request)
    if action == "crash":
        async with StopsAfterFirstStep(request["redis_url"], **options) as storage:
            await chain_workflow(storage).run("start")
        raise SystemExit("the chain ran to its end: it should have hung after its first step")
    async with RedisCheckpointStorage(request["redis_url"], **options) as storage:
        if action == "pause":
            workflow = refund_workflow(storage)
            paused = await workflow.run(request["order"])
            (asked,) = paused.get_request_info_events()
            say(request_id=asked.request_id, draft=asked.data, name="refund" if CURRENT else workflow.id)
            return
        workflow = refund_workflow(storage) if action == "answer" else chain_workflow(storage)
        latest = await storage.get_latest(workflow_name=request["name"])
        if latest is None:
            raise SystemExit(f"no checkpoint of workflow {request['name']!r}")
        pending = list(latest.pending_request_info_events)
        responses = {request_id: request["answer"] for request_id in pending} if action == "answer" else None
        done = await resume(workflow, storage, latest.checkpoint_id, responses)
        say(resumed_from=latest.checkpoint_id, pending=pending, outputs=done.get_outputs())


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
