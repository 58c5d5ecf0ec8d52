"""Example 7's workflow: an agent drafts a refund, then a person approves it (``request_info``).

Every superstep is checkpointed to a ``RedisCheckpointStorage``, so the workflow waiting for
the approval lives in Redis, not in the process that started it.

Its own module, without ``from __future__ import annotations``: the legacy framework reads the
handlers' ``WorkflowContext[...]`` annotations as objects, not strings.
"""

import os
from dataclasses import dataclass
from typing import Any, Never

from agent_framework import Executor, WorkflowBuilder, WorkflowContext, handler, response_handler

from agent_framework_redis_store import GENERATION, RedisCheckpointStorage

__all__ = [
    "WORKFLOW_NAME",
    "Approval",
    "Paused",
    "RefundDrafter",
    "draft_and_pause",
    "refund_workflow",
    "resume_with_answer",
]

WORKFLOW_NAME = "refund-approval"
INSTRUCTIONS = "You draft refunds for a shop's customer service, in one or two sentences."


class RefundDrafter(Executor):
    """Asks the agent for a draft and passes it on; counts its drafts."""

    def __init__(self, agent: Any) -> None:
        super().__init__(id="drafter")
        self.agent = agent
        self.drafts = 0

    @handler
    async def draft(self, request: str, ctx: WorkflowContext[str]) -> None:
        self.drafts += 1
        response = await self.agent.run(request)
        await ctx.send_message(response.text)


class Approval(Executor):
    """Asks a person to approve the draft, then yields the answer with the draft."""

    def __init__(self) -> None:
        super().__init__(id="approval")

    @handler
    async def ask(self, draft: str, ctx: WorkflowContext[Never, str]) -> None:
        await ctx.request_info(draft, str)  # the workflow waits here, checkpointed

    @response_handler
    async def answered(self, draft: str, answer: str, ctx: WorkflowContext[Never, str]) -> None:
        await ctx.yield_output(f"{answer}: {draft}")


def _agent(client: Any) -> Any:
    if GENERATION == "current":
        from agent_framework import Agent

        return Agent(client, INSTRUCTIONS, name="RefundBot")
    return client.create_agent(name="RefundBot", instructions=INSTRUCTIONS)


def refund_workflow(client: Any, storage: RedisCheckpointStorage) -> tuple[Any, RefundDrafter]:
    """The workflow (drafter -> approval) on the model ``client``, checkpointing to ``storage``."""
    drafter, approval = RefundDrafter(_agent(client)), Approval()
    if GENERATION == "current":
        builder = WorkflowBuilder(name=WORKFLOW_NAME, start_executor=drafter, checkpoint_storage=storage)
        return builder.add_edge(drafter, approval).build(), drafter
    builder = WorkflowBuilder(name=WORKFLOW_NAME).set_start_executor(drafter)  # type: ignore[call-arg]
    return builder.add_edge(drafter, approval).with_checkpointing(storage).build(), drafter  # type: ignore[attr-defined]


@dataclass
class Paused:
    """What the first process reports: where its workflow waits, and for what."""

    workflow_name: str
    request_id: str
    draft: str
    pid: int
    checkpoints: int


async def draft_and_pause(client: Any, redis_url: str, key_prefix: str, request: str) -> Paused:
    """Run the workflow on ``request`` until it asks for approval; its checkpoints stay in Redis."""
    async with RedisCheckpointStorage(redis_url, key_prefix=key_prefix) as storage:
        workflow, _ = refund_workflow(client, storage)
        paused = await workflow.run(request)
        (asked,) = paused.get_request_info_events()
        # The legacy framework files checkpoints under the workflow instance's (random) id.
        name = WORKFLOW_NAME if GENERATION == "current" else workflow.id
        saved = await storage.list_checkpoint_ids(workflow_name=name)
        return Paused(name, asked.request_id, str(asked.data), os.getpid(), len(saved))


async def resume_with_answer(
    workflow: Any, storage: RedisCheckpointStorage, checkpoint_id: str, answers: dict[str, str]
) -> list[str]:
    """Restore ``workflow`` from a checkpoint, answer its pending requests, run it to its end; its outputs."""
    if GENERATION == "current":
        done = await workflow.run(checkpoint_id=checkpoint_id, checkpoint_storage=storage, responses=answers)
    else:
        # The legacy framework re-emits the pending requests on restore; the answers go in afterwards.
        await workflow.run(checkpoint_id=checkpoint_id, checkpoint_storage=storage)
        done = await workflow.send_responses(answers)
    return [str(output) for output in done.get_outputs()]
