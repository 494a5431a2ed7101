"""Coding sessions on real repositories: real sandbox, real approvals store, scripted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchmarks.coding_tasks import make_tasks

from roost.coding.scripted import KnownGoodPlan, follow
from roost.coding.session import NotARepository, check_repository, open_sessions
from roost.llm.testing import FunctionModel
from roost.platform.kernel import Roost


async def approve_all(approval: dict[str, Any]) -> Any:
    return "approve"


async def test_a_planted_bug_is_fixed_and_the_tests_pass(kernel: Roost, tmp_path: Path) -> None:
    task = next(t for t in make_tasks() if t.name == "bug-add")
    repo = task.materialise(tmp_path)
    kernel.llm.router.registry.register(FunctionModel(follow(task.solution), "scripted:t"))
    sessions = await open_sessions(kernel, model="scripted:t")
    asked: list[dict[str, Any]] = []

    async def decide(approval: dict[str, Any]) -> Any:
        asked.append(approval)
        return "approve"

    result = await sessions.run(repo, task.task, decide=decide)
    assert result.status == "succeeded", (result.error, result.output)
    assert "return a + b" in (repo / "calc/ops.py").read_text()
    assert result.output["tests"]["passed"] is True
    assert "-    return a - b" in result.output["diff"]
    assert asked == []  # the plan names calc/ops.py: nothing to approve
    kinds = [e["event"] for e in result.events]
    assert "plan" in kinds and "report" in kinds
    sessions.close()


def test_not_a_repository_is_refused_or_initialised(tmp_path: Path) -> None:
    with pytest.raises(NotARepository, match="not a git repository"):
        check_repository(tmp_path)
    assert check_repository(tmp_path, init=True) == tmp_path.resolve()
    assert (tmp_path / ".git").is_dir()


async def test_overwrite_outside_the_plan_waits_for_approval_and_a_denial_is_reported(
    kernel: Roost, tmp_path: Path
) -> None:
    task = next(t for t in make_tasks() if t.name == "bug-add")
    repo = task.materialise(tmp_path)
    plan = KnownGoodPlan(
        "1. Fix calc/ops.py.",
        [("write_file", {"path": "tests/test_add.py", "content": "# gone\n"}),
         *task.solution.steps[1:]],
    )  # fmt: skip
    kernel.llm.router.registry.register(FunctionModel(follow(plan), "scripted:t2"))
    sessions = await open_sessions(kernel, model="scripted:t2")
    asked: list[dict[str, Any]] = []

    async def deny(approval: dict[str, Any]) -> Any:
        asked.append(approval)
        return "deny"

    result = await sessions.run(repo, task.task, decide=deny)
    assert [a["tool"] for a in asked] == ["write_file"]
    assert "plan does not name" in asked[0]["reason"]
    assert "test_add" in (repo / "tests/test_add.py").read_text()  # not overwritten
    assert result.status == "succeeded"
    denied = [e for e in result.events if e["event"] == "tool_result" and e["tool"] == "write_file"]
    assert denied and denied[0]["status"] == "error"
    sessions.close()


async def test_the_same_failing_edit_twice_is_a_loop_and_then_a_stop_with_a_report(
    kernel: Roost, tmp_path: Path
) -> None:
    task = next(t for t in make_tasks() if t.name == "bug-add")
    repo = task.materialise(tmp_path)
    bad = ("apply_edit", {"edits": [{"path": "calc/ops.py", "search": "return a * b",
                                     "replace": "return a + b"}]})  # fmt: skip
    kernel.llm.router.registry.register(
        FunctionModel(follow(KnownGoodPlan("fix calc/ops.py", [bad] * 6)), "scripted:loop")
    )
    sessions = await open_sessions(kernel, model="scripted:loop")
    result = await sessions.run(repo, task.task, decide=approve_all)
    assert result.status == "failed"
    assert result.error is not None and result.error.startswith("loop:")
    assert result.output["loop_triggers"] == 2
    assert result.output["stopped_because"].startswith("loop:")
    assert "make the tests pass" in result.output["remaining"] or result.output["remaining"]
    loops = [e for e in result.events if e["event"] == "loop"]
    assert len(loops) == 2
    # the conflict reached the model with where the closest text is
    errors = [e.get("error", "") for e in result.events if e["event"] == "tool_result"]
    assert any("closest text is at line 2" in e for e in errors), errors
    assert (repo / "calc/ops.py").read_text() == task.files["calc/ops.py"]  # nothing written
    sessions.close()


async def test_an_approved_command_outside_the_allow_list_runs_in_the_sandbox(
    kernel: Roost, tmp_path: Path
) -> None:
    """The approval is bound to the arguments the executor runs (defaults filled in), so
    approving the call runs it instead of failing it as "other arguments"."""
    task = next(t for t in make_tasks() if t.name == "bug-add")
    repo = task.materialise(tmp_path)
    steps = [("run_command", {"argv": ["echo", "approved"]}), *task.solution.steps]
    kernel.llm.router.registry.register(
        FunctionModel(follow(KnownGoodPlan(task.solution.plan, steps)), "scripted:ok")
    )
    sessions = await open_sessions(kernel, model="scripted:ok")
    asked: list[dict[str, Any]] = []

    async def approve(approval: dict[str, Any]) -> Any:
        asked.append(approval)
        return "approve"

    result = await sessions.run(repo, task.task, decide=approve)
    assert [a["tool"] for a in asked] == ["run_command"]
    ran = [e for e in result.events if e["event"] == "tool_result" and e["tool"] == "run_command"]
    assert [e["status"] for e in ran] == ["ok"], ran
    assert result.status == "succeeded", (result.error, result.output)
    sessions.close()


@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_the_jail_of_a_command_awaiting_approval_is_ready_and_fails_closed(
    kernel: Roost, tmp_path: Path, decision: str
) -> None:
    """While the approval is pending its jail waits; approving runs exactly the asked
    command in it, denying tears it down with nothing run; no jail is left either way."""
    task = next(t for t in make_tasks() if t.name == "bug-add")
    repo = task.materialise(tmp_path)
    record = "import pathlib, sys; pathlib.Path('ran.txt').write_text(sys.argv[1])"
    steps = [("run_command", {"argv": ["python3", "-c", record, "asked"]}), *task.solution.steps]
    kernel.llm.router.registry.register(
        FunctionModel(follow(KnownGoodPlan(task.solution.plan, steps)), f"scripted:{decision}")
    )
    sessions = await open_sessions(kernel, model=f"scripted:{decision}")
    prepared = kernel.tools.executor.sandbox.prepared
    waiting: list[bool] = []

    async def decide(approval: dict[str, Any]) -> Any:
        waiting.append(approval["approval_id"] in prepared)
        return decision

    result = await sessions.run(repo, task.task, decide=decide)
    assert waiting == [True]
    assert len(prepared) == 0
    ran = [e for e in result.events if e["event"] == "tool_result" and e["tool"] == "run_command"]
    if decision == "approve":
        assert [e["status"] for e in ran] == ["ok"], ran
        assert (repo / "ran.txt").read_text() == "asked"
    else:
        assert [e["status"] for e in ran] == ["error"], ran
        assert not (repo / "ran.txt").exists()
    sessions.close()


async def test_the_plan_turn_is_capped_by_plan_max_tokens(kernel: Roost, tmp_path: Path) -> None:
    """A small model that rambles spends at most plan_max_tokens on its plan; the turns
    after it keep the spec's per-turn cap."""
    task = next(t for t in make_tasks() if t.name == "bug-add")
    repo = task.materialise(tmp_path)
    caps: list[tuple[bool, int | None]] = []
    script = follow(task.solution)

    def recording(info: Any) -> Any:
        users = [m for m in info.messages if m.role == "user"]
        is_plan = bool(users) and "PLAN:" in str(users[-1].parts[0])
        caps.append((is_plan, info.settings.max_tokens))
        return script(info)

    kernel.llm.router.registry.register(FunctionModel(recording, "scripted:capped"))
    sessions = await open_sessions(kernel, model="scripted:capped")
    result = await sessions.run(repo, task.task, decide=approve_all,
                                variables={"plan_max_tokens": "48"})  # fmt: skip
    assert result.status == "succeeded", (result.error, result.output)
    assert caps[0] == (True, 48)
    assert caps[1:] and all(cap == (False, 192) for cap in caps[1:]), caps
    sessions.close()
