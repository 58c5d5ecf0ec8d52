"""A two-step workflow that waits for a person: drafts a refund, then asks for approval.

Its own module, without ``from __future__ import annotations``: the legacy framework reads the
handlers' ``WorkflowContext[...]`` annotations as objects, not strings.
"""

from typing import Any, Never

from agent_framework import Executor, WorkflowBuilder, WorkflowContext, handler, response_handler

from agent_framework_redis_store import GENERATION


class Drafter(Executor):
    @handler
    async def draft(self, request: str, ctx: WorkflowContext[str]) -> None:
        await ctx.send_message(f"draft refund for {request}")


class Approver(Executor):
    @handler
    async def review(self, draft: str, ctx: WorkflowContext[Never, str]) -> None:
        await ctx.request_info(draft, str)  # waits for a person

    @response_handler
    async def answered(self, draft: str, answer: str, ctx: WorkflowContext[Never, str]) -> None:
        await ctx.yield_output(f"{draft}: {answer}")


def refund_workflow(storage: Any) -> Any:
    """The workflow, checkpointing to ``storage`` (named "refund")."""
    drafter, approver = Drafter(id="drafter"), Approver(id="approver")
    if GENERATION == "current":
        builder = WorkflowBuilder(name="refund", start_executor=drafter, checkpoint_storage=storage)
        return builder.add_edge(drafter, approver).build()
    builder = WorkflowBuilder(name="refund").set_start_executor(drafter)  # type: ignore[call-arg]
    return builder.add_edge(drafter, approver).with_checkpointing(storage).build()  # type: ignore[attr-defined]
