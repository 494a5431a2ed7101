"""Procedural memory in ReAct runs: a tool sequence that worked is offered again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from roost.agents.procedures import HINTS_HEADER
from roost.agents.runtime import AgentRuntime, ExecutorToolRunner
from roost.agents.spec import AgentSpec
from roost.config import Settings
from roost.llm.embeddings import HashingEmbedder
from roost.llm.messages import Message, ToolCallPart, ToolResultPart
from roost.llm.testing import CallInfo, FunctionModel
from roost.memory.service import MemoryServices
from roost.platform import Platform
from roost.tools.service import ToolService
from tests.agents.conftest import llm_with
from tests.agents.test_react import run_agent


@pytest.fixture
async def memory(platform: Platform, settings: Settings) -> AsyncIterator[MemoryServices]:
    services = await MemoryServices.open(settings, platform.database, embedder=HashingEmbedder())
    try:
        yield services
    finally:
        await services.close()


def call(name: str, **arguments: object) -> Message:
    return Message("assistant", (ToolCallPart(f"call_{name}", name, json.dumps(arguments)),))


def lookup_then_add(info: CallInfo) -> Message | str:
    """Looks the word up, then adds: the sequence run 1 should teach."""
    done = [p.name for m in info.messages for p in m.parts if isinstance(p, ToolResultPart)]
    if not done:
        return call("lookup", key="roost")
    if done == ["lookup"]:
        return call("add", a=2, b=3)
    return "roost means a place where birds rest; 2 + 3 = 5"


async def test_a_successful_tool_sequence_is_offered_for_a_similar_task(
    tools: ToolService, memory: MemoryServices, tenant_id: str
) -> None:
    prompts: list[str] = []

    def second_run(info: CallInfo) -> Message | str:
        prompts.append(info.messages[1].text)
        return "noted"

    model = FunctionModel(lookup_then_add, "function:first")
    runtime = AgentRuntime(
        llm_with(model, FunctionModel(second_run, "function:second")),
        ExecutorToolRunner(tools),
        memory=memory,
    )
    spec = AgentSpec(name="helper", model="function:first", tools=["lookup", "add"])
    task = "look up the word roost and add two numbers"
    out = await run_agent(spec, runtime, tenant_id, task, thread="t1")
    assert out["status"] == "succeeded"

    (recorded,) = await memory.procedural.similar(tenant_id, "helper", task)
    assert recorded.task == task  # without hints or memories added to the message
    assert [s.tool for s in recorded.steps] == ["lookup", "add"]
    assert recorded.steps[0].result == "a place where birds rest" and recorded.steps[1].ok
    assert recorded.source["run_id"] == "run_1"

    second = spec.model_copy(update={"model": "function:second"})
    await run_agent(second, runtime, tenant_id, "look up the word perch and add two numbers",
                    thread="t2")  # fmt: skip
    hint = prompts[0]
    assert hint.startswith(HINTS_HEADER)
    assert hint.index('lookup({"key": "roost"})') < hint.index('add({"a": 2, "b": 3})')
    assert hint.endswith("look up the word perch and add two numbers")

    # an unrelated task gets no hints, and the switch turns them off
    await run_agent(second, runtime, tenant_id, "write a haiku about autumn", thread="t3")
    assert prompts[1] == "write a haiku about autumn"
    off = second.model_copy(
        update={"memory": second.memory.model_copy(update={"procedures": False})}
    )
    await run_agent(off, runtime, tenant_id, "look up the word perch and add two numbers",
                    thread="t4")  # fmt: skip
    assert prompts[2] == "look up the word perch and add two numbers"
