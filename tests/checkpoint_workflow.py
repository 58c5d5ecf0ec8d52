"""Workflows for the checkpoint tests: one that waits for a person (drafts a refund, then asks
for approval) and a three-step chain.

Its own module, without ``from __future__ import annotations``: the legacy framework reads the
handlers' ``WorkflowContext[...]`` annotations as objects, not strings.
"""

import os
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


class Step(Executor):
    """Adds ``<its id>@<pid>`` to the trail and passes it on: the output shows which process ran each step."""

    @handler
    async def step(self, trail: str, ctx: WorkflowContext[str]) -> None:
        await ctx.send_message(f"{trail} {self.id}@{os.getpid()}")


class LastStep(Executor):
    @handler
    async def finish(self, trail: str, ctx: WorkflowContext[Never, str]) -> None:
        await ctx.yield_output(f"{trail} {self.id}@{os.getpid()}")


def chain_workflow(storage: Any) -> Any:
    """Three supersteps, ``first`` -> ``second`` -> ``last``, checkpointing to ``storage`` (named "chain")."""
    first, second, last = Step(id="first"), Step(id="second"), LastStep(id="last")
    if GENERATION == "current":
        builder = WorkflowBuilder(name="chain", start_executor=first, checkpoint_storage=storage)
        return builder.add_edge(first, second).add_edge(second, last).build()
    builder = WorkflowBuilder(name="chain").set_start_executor(first)  # type: ignore[call-arg]
    builder = builder.add_edge(first, second).add_edge(second, last)
    return builder.with_checkpointing(storage).build()  # type: ignore[attr-defined]
