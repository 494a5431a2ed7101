"""The time budget holds inside a model turn: a turn that outlives it is cancelled and the
run stops with its report (what was done, what remains), instead of overrunning."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from benchmarks.coding_tasks import make_tasks

from roost.coding.bundled import coder_spec
from roost.coding.session import open_sessions
from roost.llm.testing import CallInfo, FunctionModel
from roost.platform.kernel import Roost


async def deny(_: dict[str, Any]) -> Any:
    return "deny"


class StuckModel:
    """Plans at once, then never finishes its next turn (a slow local model, taken to the
    limit); records whether the stuck call was cancelled."""

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = False
        self.never = asyncio.Event()

    async def __call__(self, info: CallInfo) -> str:
        self.calls += 1
        if self.calls == 1:
            return "1. Read calc/ops.py.\n2. Fix add in calc/ops.py.\n3. Run the tests."
        try:
            await self.never.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "unreachable"


async def test_a_model_turn_past_the_time_budget_is_cancelled_and_reported(
    kernel: Roost, tmp_path: Path
) -> None:
    repo = next(t for t in make_tasks() if t.name == "bug-add").materialise(tmp_path)
    model = StuckModel()
    kernel.llm.router.registry.register(FunctionModel(model, "stuck:coder"))
    sessions = await open_sessions(kernel, model="stuck:coder")
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(
            sessions.run(repo, "make the failing test pass", decide=deny,
                         variables={"max_seconds": "3"}),
            60,  # a hang here is the bug this test is about
        )  # fmt: skip
    finally:
        sessions.close()
    wall = time.monotonic() - started
    assert result.status == "failed"
    report = result.output
    assert report["outcome"] == "stopped"
    assert "time budget" in report["stopped_because"]
    assert "model turn cancelled" in report["stopped_because"]
    assert report["remaining"]  # what is left to do is said
    assert "calc/ops.py" in report["plan"]  # what was done (the plan) is kept
    assert model.cancelled, "the in-flight model call was not cancelled"
    assert wall < 30, wall  # stopped near the budget, not after the harness timeout


def test_the_coder_spec_keeps_turns_short_for_small_local_models() -> None:
    spec = coder_spec()
    assert spec.max_tokens is not None and spec.max_tokens <= 256
