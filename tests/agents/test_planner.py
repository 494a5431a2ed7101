"""Planner: DAG validation and model plans repaired until valid."""

from __future__ import annotations

import json

import pytest

from roost.agents.planner import PLAN_TOOL, Plan, PlanInvalid, make_plan, validate_plan, waves
from roost.llm.base import RequestContext
from roost.llm.messages import Message, ToolCallPart
from roost.llm.testing import CallInfo, FunctionModel
from tests.agents.conftest import llm_with

AGENTS = {"researcher": "finds facts", "writer": "writes prose"}


def plan(*subtasks: dict[str, object]) -> Plan:
    return Plan.model_validate({"subtasks": list(subtasks)})


def test_valid_plan_runs_in_waves() -> None:
    p = plan(
        {"id": "a", "description": "find", "agent": "researcher"},
        {"id": "b", "description": "find more", "agent": "researcher"},
        {"id": "c", "description": "write", "agent": "writer", "depends_on": ["a", "b"]},
    )
    assert validate_plan(p, AGENTS) is p
    assert waves(p) == [["a", "b"], ["c"]]


@pytest.mark.parametrize(
    ("subtasks", "problem"),
    [
        ([{"id": "a", "description": "x", "agent": "coder"}], "unknown agent 'coder'"),
        ([{"id": "a", "description": "x", "agent": "writer", "depends_on": ["z"]}],
         "unknown subtask 'z'"),
        ([{"id": "a", "description": "x", "agent": "writer"},
          {"id": "a", "description": "y", "agent": "writer"}], "duplicate ids ['a']"),
        ([{"id": "a", "description": "x", "agent": "writer", "depends_on": ["b"]},
          {"id": "b", "description": "y", "agent": "writer", "depends_on": ["a"]}],
         "dependency cycle among ['a', 'b']"),
        ([{"id": "a", "description": "x", "agent": "writer", "depends_on": ["a"]}],
         "depends on itself"),
    ],
)  # fmt: skip
def test_invalid_plans_name_the_problem(subtasks: list[dict[str, object]], problem: str) -> None:
    with pytest.raises(PlanInvalid, match="invalid plan") as raised:
        validate_plan(plan(*subtasks), AGENTS)
    assert any(problem in p for p in raised.value.problems), raised.value.problems


async def test_make_plan_repairs_an_invalid_answer() -> None:
    answers = iter(
        [
            "I would first research, then write.",
            json.dumps({"subtasks": [{"id": "a", "description": "x", "agent": "painter"}]}),
            json.dumps({"subtasks": [{"id": "a", "description": "x", "agent": "writer"}]}),
        ]
    )
    model = FunctionModel(lambda info: next(answers), "function:planner")
    made = await make_plan(
        llm_with(model), "function:planner", "write a poem", AGENTS, context=RequestContext("t")
    )
    assert [s.agent for s in made.subtasks] == ["writer"]
    assert "unknown agent 'painter'" in model.calls[2].messages[-1].text


async def test_make_plan_gives_up_after_the_retries() -> None:
    def never(info: CallInfo) -> str:
        return json.dumps({"subtasks": []})

    with pytest.raises(PlanInvalid, match="no valid plan after 2 attempts"):
        await make_plan(
            llm_with(FunctionModel(never, "function:p")), "function:p", "x", AGENTS,
            context=RequestContext("t"), retries=1,
        )  # fmt: skip


async def test_make_plan_asks_for_the_plan_tool_and_keeps_earlier_dependencies_only() -> None:
    plan = {"subtasks": [
        {"id": "a", "description": "x", "agent": "researcher", "depends_on": ["a", "b", "zz"]},
        {"id": "b", "description": "y", "agent": "writer", "depends_on": ["a", "a"]},
    ]}  # fmt: skip

    def planner(info: CallInfo) -> Message:
        return Message("assistant", (ToolCallPart("p0", PLAN_TOOL, json.dumps(plan)),))

    model = FunctionModel(planner, "function:planner")
    made = await make_plan(
        llm_with(model), "function:planner", "x", AGENTS, context=RequestContext("t")
    )
    assert [(s.id, s.depends_on) for s in made.subtasks] == [("a", []), ("b", ["a"])]
    (call,) = model.calls
    assert call.settings.tool_choice == PLAN_TOOL
    (tool,) = call.tools
    agent_schema = tool.parameters["properties"]["subtasks"]["items"]["properties"]["agent"]
    assert agent_schema == {"enum": sorted(AGENTS)}


async def test_a_refused_plan_tool_call_is_answered_with_a_tool_result() -> None:
    answers = iter([
        {"subtasks": [{"id": "a", "description": "x", "agent": "painter", "depends_on": []}]},
        {"subtasks": [{"id": "a", "description": "x", "agent": "writer", "depends_on": []}]},
    ])  # fmt: skip

    def planner(info: CallInfo) -> Message:
        return Message("assistant", (ToolCallPart("p0", PLAN_TOOL, json.dumps(next(answers))),))

    model = FunctionModel(planner, "function:planner")
    made = await make_plan(
        llm_with(model), "function:planner", "x", AGENTS, context=RequestContext("t")
    )
    assert made.subtasks[0].agent == "writer"
    retry = model.calls[1].messages[-1]
    assert retry.role == "tool" and "unknown agent 'painter'" in str(retry.parts[0])
