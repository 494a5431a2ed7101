"""The coder end to end on the real bundled model: it plans, acts and is verified in the
sandbox; the 135M model rarely fixes the bug, so the test asserts the loop, not success."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchmarks.coding_tasks import make_tasks

from roost.coding.bundled import coder_spec
from roost.coding.session import open_sessions
from roost.config import load_settings
from roost.engine import Engine
from roost.platform.kernel import Roost, RunExecution
from tests.api.conftest import engine  # noqa: F401

pytestmark = pytest.mark.slow


async def test_a_session_on_the_bundled_model_settles_with_a_report(
    engine: Engine,  # noqa: F811
    roost_home: Path,
    tmp_path: Path,
) -> None:
    task = next(t for t in make_tasks() if t.name == "bug-add")
    repo = task.materialise(tmp_path)
    settings = load_settings(env={"ROOST_HOME": str(roost_home)})
    async with await Roost.open(
        settings, engine=engine, execution=RunExecution(0), connect_mcp=False
    ) as kernel:
        spec = coder_spec().model_copy(
            update={"model": f"local:{engine.model_name}", "max_iterations": 3,
                    "max_tokens": 64, "max_reflections": 0}
        )  # fmt: skip

        async def deny(_: dict[str, Any]) -> Any:
            return "deny"

        sessions = await open_sessions(kernel, spec=spec)
        try:
            result = await sessions.run(repo, task.task, decide=deny)
        finally:
            sessions.close()
    assert result.status in ("succeeded", "failed")
    assert result.usage["model_calls"] >= 2  # the plan and at least one turn
    kinds = [e["event"] for e in result.events]
    assert "plan" in kinds and "report" in kinds
    report = result.output
    assert report["tests"] or report.get("stopped_because"), report
    assert report["outcome"] in ("solved", "stopped")
