"""Coordinator: parallel workers via Send, partial failure, a revision round."""

from __future__ import annotations

import asyncio
import json

from roost.agents.coordinator import AgentWorkers, Coordinator
from roost.agents.registry import AgentRegistry
from roost.agents.schema import AGENT_MIGRATIONS
from roost.agents.spec import AgentSpec
from roost.graph import MemoryCheckpointer
from roost.llm.base import RequestContext
from roost.llm.testing import CallInfo, FunctionModel
from roost.platform import Platform
from roost.storage import migrate
from tests.agents.conftest import RuntimeFactory, llm_with

AGENTS = {"researcher": "finds facts", "writer": "writes prose"}
PLAN = {
    "subtasks": [
        {"id": "facts", "description": "find facts", "agent": "researcher"},
        {"id": "quotes", "description": "find quotes", "agent": "researcher", "required": False},
        {"id": "essay", "description": "write", "agent": "writer",
         "depends_on": ["facts", "quotes"]},
    ]
}  # fmt: skip


class ScriptedWorkers:
    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.prompts: dict[str, str] = {}
        self.running = 0
        self.overlapped = asyncio.Event()

    async def run(self, agent: str, prompt: str, subtask_id: str) -> str:
        self.prompts[subtask_id] = prompt
        self.running += 1
        if self.running >= 2:
            self.overlapped.set()
        if subtask_id in ("facts", "quotes"):  # the first wave runs both at once
            await asyncio.wait_for(self.overlapped.wait(), 10)
        self.running -= 1
        if subtask_id in self.fail:
            raise RuntimeError(f"{subtask_id} broke")
        return f"<{subtask_id} done>"


def synthesizer(info: CallInfo) -> str:
    text = info.messages[-1].text
    if "Reply with exactly APPROVE" in text:
        return "APPROVE" if "revised" in text else "mention the sources"
    return "revised essay" if "reviewer asked" in text else "draft essay"


async def run(workers: ScriptedWorkers, model: FunctionModel) -> dict[str, object]:
    coordinator = Coordinator(
        llm_with(model), "function:boss", AGENTS, workers, context=RequestContext("t")
    )
    graph = coordinator.builder().compile(checkpointer=MemoryCheckpointer())
    return await graph.ainvoke({"task": "an essay", "plan": PLAN}, thread_id="c1")


async def test_parallel_workers_a_failed_optional_one_and_a_revision() -> None:
    workers = ScriptedWorkers(fail={"quotes"})
    model = FunctionModel(synthesizer, "function:boss")
    out = await run(workers, model)
    assert out["status"] == "partial"
    assert out["answer"] == "revised essay"
    assert out["revisions"] == 1
    assert out["failures"] == {"quotes": "RuntimeError: quotes broke"}
    assert "Result of facts: <facts done>" in workers.prompts["essay"]
    assert "quotes failed" in workers.prompts["essay"]
    assert "quotes" in model.calls[0].messages[-1].text  # the synthesizer is told what failed


async def test_a_failed_required_worker_fails_the_task() -> None:
    workers = ScriptedWorkers(fail={"facts"})
    out = await run(workers, FunctionModel(synthesizer, "function:boss"))
    assert out["status"] == "failed"
    assert "facts: RuntimeError: facts broke" in str(out["error"])
    assert "essay" not in workers.prompts


async def test_workers_are_registered_agents_with_a_planner(
    platform: Platform, tenant_id: str, make_runtime: RuntimeFactory
) -> None:
    await migrate(platform.database, AGENT_MIGRATIONS)
    registry = AgentRegistry(platform.database)
    for name in AGENTS:
        await registry.create(tenant_id, AgentSpec(name=name, model="function:worker"))

    def worker(info: CallInfo) -> str:
        return f"{info.context.cache_identity if info.context else ''} did it"

    def boss(info: CallInfo) -> str:
        text = info.messages[-1].text
        if text.startswith("Break the task"):
            return json.dumps(PLAN)
        return "APPROVE" if "Reply with exactly APPROVE" in text else "final"

    runtime = make_runtime(FunctionModel(worker, "function:worker"))
    workers = AgentWorkers(registry, runtime, tenant_id, "thr_1")
    coordinator = Coordinator(
        llm_with(FunctionModel(boss, "function:boss")), "function:boss", AGENTS, workers,
        context=RequestContext(tenant_id),
    )  # fmt: skip
    graph = coordinator.builder().compile(checkpointer=MemoryCheckpointer())
    out = await graph.ainvoke({"task": "an essay"}, thread_id="c1")
    assert out["status"] == "succeeded" and out["answer"] == "final"
    # each worker ran on its own sub-thread, i.e. its own KV cache identity
    assert out["results"] == {
        "facts": "thr_1:facts did it",
        "quotes": "thr_1:quotes did it",
        "essay": "thr_1:essay did it",
    }
