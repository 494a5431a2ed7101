"""Planner: a task decomposed into a validated subtask DAG (structured output from a model).

A plan is acyclic, its ids are unique, every dependency exists and every subtask is
assigned to a known agent. :func:`make_plan` asks the model, validates, and sends the
problems back for repair a bounded number of times.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from roost.agents.output import validate_output
from roost.agents.runtime import ModelCaller
from roost.errors import InvalidRequest
from roost.llm.base import RequestContext
from roost.llm.messages import Message, ModelSettings, Response, ResponseDone, ToolDefinition


class Subtask(BaseModel):
    """One node of the plan."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1)
    agent: str
    depends_on: list[str] = Field(default_factory=list)
    required: bool = Field(True, description="A failure here fails the whole task")


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subtasks: list[Subtask] = Field(min_length=1)


PLAN_SCHEMA: dict[str, Any] = Plan.model_json_schema()


class PlanInvalid(InvalidRequest):
    """The plan breaks a rule; ``problems`` lists every one found."""

    code = "plan_invalid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid plan: " + "; ".join(problems))
        self.problems = problems


def validate_plan(plan: Plan, agents: Mapping[str, str] | set[str]) -> Plan:
    """Check ids, dependencies, agents and acyclicity; raise :class:`PlanInvalid` with all problems."""
    problems: list[str] = []
    ids = [s.id for s in plan.subtasks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"duplicate ids {duplicates}")
    known = set(ids)
    for subtask in plan.subtasks:
        if subtask.agent not in agents:
            problems.append(f"{subtask.id}: unknown agent {subtask.agent!r}")
        for dependency in subtask.depends_on:
            if dependency not in known:
                problems.append(f"{subtask.id}: depends on unknown subtask {dependency!r}")
            elif dependency == subtask.id:
                problems.append(f"{subtask.id}: depends on itself")
    if not problems:
        try:
            waves(plan)
        except PlanInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise PlanInvalid(problems)
    return plan


def waves(plan: Plan) -> list[list[str]]:
    """Subtask ids in dependency order, grouped into waves that can run in parallel."""
    remaining = {s.id: set(s.depends_on) for s in plan.subtasks}
    done: set[str] = set()
    result: list[list[str]] = []
    while remaining:
        ready = sorted(i for i, deps in remaining.items() if deps <= done)
        if not ready:
            raise PlanInvalid([f"dependency cycle among {sorted(remaining)}"])
        result.append(ready)
        done.update(ready)
        for i in ready:
            del remaining[i]
    return result


def _prompt(task: str, agents: Mapping[str, str]) -> str:
    roster = "\n".join(f"- {name}: {description}" for name, description in agents.items())
    return (
        "Break the task into subtasks for these agents:\n"
        f"{roster}\n"
        "Reply with only JSON matching this schema (ids short, depends_on lists ids of"
        " subtasks whose results are needed first):\n"
        f"{json.dumps(PLAN_SCHEMA)}\n\nTask: {task}"
    )


PLAN_TOOL = "submit_plan"
MAX_SUBTASKS = 8


def plan_tool(agents: Mapping[str, str]) -> ToolDefinition:
    """The plan as a tool call: with a local model the call is grammar-constrained, so
    even a small model answers with a well-formed plan over the known agents only."""
    subtask = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"},
            "description": {"type": "string", "minLength": 1, "maxLength": 400},
            "agent": {"enum": sorted(agents)},
            "depends_on": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
        },
        "required": ["id", "description", "agent", "depends_on"],
    }
    schema = {
        "type": "object",
        "properties": {
            "subtasks": {"type": "array", "items": subtask, "minItems": 1,
                         "maxItems": MAX_SUBTASKS},
        },
        "required": ["subtasks"],
    }  # fmt: skip
    return ToolDefinition(PLAN_TOOL, "Submit the plan: subtasks for the agents.", schema)


async def make_plan(
    llm: ModelCaller,
    model: str,
    task: str,
    agents: Mapping[str, str],
    *,
    context: RequestContext,
    retries: int = 2,
) -> Plan:
    """Ask ``model`` for a plan over ``agents`` (name -> description); repair invalid answers.

    The model is asked to call :data:`PLAN_TOOL`; a model that answers in text instead
    (a remote one ignoring ``tool_choice``) has its text read as the plan's JSON."""
    tool = plan_tool(agents)
    messages = [Message.user(_prompt(task, agents))]
    problems = "no answer"
    for _ in range(retries + 1):
        response = await _request(llm, model, messages, (tool,), context)
        calls = [c for c in response.tool_calls if c.name == PLAN_TOOL]
        text = calls[0].arguments if calls else response.text
        value, error = validate_output(text, PLAN_SCHEMA)
        if error is None:
            try:
                return validate_plan(Plan.model_validate(_earlier_only(value)), agents)
            except PlanInvalid as exc:
                error = exc.message
            except ValidationError as exc:
                error = str(exc.errors()[0]["msg"])
        problems = error
        retry = f"That plan is not valid: {error}. Reply with a corrected plan."
        messages.append(response.message)
        if calls:
            messages.append(Message.tool_result(calls[0].id, retry, name=PLAN_TOOL, is_error=True))
        else:
            messages.append(Message.user(retry))
    raise PlanInvalid([f"no valid plan after {retries + 1} attempts: {problems}"])


def _earlier_only(value: Any) -> Any:
    """A model's plan with each ``depends_on`` cut to ids of earlier subtasks: the order
    the model wrote is the order it meant, and what it named beyond that (itself, later
    subtasks, ids it made up) is noise a small model adds, not a dependency."""
    if not isinstance(value, dict) or not isinstance(value.get("subtasks"), list):
        return value
    seen: list[str] = []
    subtasks = []
    for item in value["subtasks"]:
        if isinstance(item, dict) and isinstance(item.get("depends_on"), list):
            deps = [d for d in item["depends_on"] if d in seen]
            item = {**item, "depends_on": list(dict.fromkeys(deps))}
        subtasks.append(item)
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            seen.append(item["id"])
    return {**value, "subtasks": subtasks}


async def _request(
    llm: ModelCaller,
    model: str,
    messages: list[Message],
    tools: tuple[ToolDefinition, ...],
    context: RequestContext,
) -> Response:
    final: Response | None = None
    settings = ModelSettings(temperature=0, tool_choice=PLAN_TOOL)
    async for event in llm.request_stream(model, messages, settings, tools, context=context):
        if isinstance(event, ResponseDone):
            final = event.response
    assert final is not None
    return final
