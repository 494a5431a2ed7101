"""A plugin (``plugins = ["roost.llm.scripted_steps"]``) with a scripted agent for load
tests and multi-process tests: the model ``scripted:steps`` calls the tool
``scripted_step`` N times, one call per model turn, then answers ``done after N steps``.

Everything is real but the model: runs go through the queue, the ReAct graph, the tool
executor (permissions, audit) and checkpoints. Environment variables steer it, the same
in every process of a deployment:

- ``SCRIPTED_STEPS``: tool steps per run (default 5);
- ``SCRIPTED_STEPS_DIR``: when set, each step appends ``<run> <step> <executor pid>`` to
  ``effects.txt`` there once it is done (to count how often each step ran), writes
  ``started-<run>-<step>`` (holding the pid) when it starts, and waits while a file
  ``hold-<step>`` or ``hold-<run>-<step>`` exists there (so a test can cancel a run or
  kill a worker mid-run).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from roost.llm.messages import Message, ToolCallPart, ToolResultPart
from roost.llm.testing import CallInfo, FunctionModel
from roost.tools.context import ToolContext

if TYPE_CHECKING:
    from roost.platform.kernel import Roost

MODEL_ID = "scripted:steps"
TOOL_NAME = "scripted_step"


def _steps() -> int:
    return int(os.environ.get("SCRIPTED_STEPS", "5"))


def next_step(info: CallInfo) -> Message | str:
    """One tool call per turn until ``SCRIPTED_STEPS`` results are in, then the answer."""
    done = sum(isinstance(p, ToolResultPart) for m in info.messages for p in m.parts)
    if done >= _steps():
        return f"done after {done} steps"
    arguments = f'{{"step": {done + 1}}}'
    return Message("assistant", (ToolCallPart(f"call_{done + 1}", TOOL_NAME, arguments),))


async def scripted_step(ctx: ToolContext, step: int) -> str:
    """One step of a scripted run: leaves a trace, may be held by the test."""
    directory = os.environ.get("SCRIPTED_STEPS_DIR")
    if directory:
        holds = [Path(directory) / f"hold-{step}", Path(directory) / f"hold-{ctx.run_id}-{step}"]
        (Path(directory) / f"started-{ctx.run_id}-{step}").write_text(str(os.getpid()))
        # The test holds a step with a file another process removes: polling is the way.
        while any(hold.exists() for hold in holds):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        with (Path(directory) / "effects.txt").open("a") as effects:
            effects.write(f"{ctx.run_id} {step} {os.getpid()}\n")
    return f"step {step} ok"


def register(kernel: Roost) -> None:
    from roost.tools.base import tool_from_function
    from roost.tools.toolsets import StaticToolset

    kernel.llm.router.registry.register(FunctionModel(next_step, MODEL_ID))
    kernel.tools.registry.add_shared(StaticToolset([tool_from_function(scripted_step)]))
