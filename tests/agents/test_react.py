"""The ReAct graph with scripted models and the real tool executor."""

from __future__ import annotations

import json
from typing import Any

from roost.agents.react import build_react_graph, run_input
from roost.agents.runtime import AgentRuntime, RunContext
from roost.agents.spec import AgentSpec
from roost.graph import Command, MemoryCheckpointer
from roost.llm.messages import Message, ToolCallPart, ToolResultPart
from roost.llm.testing import CallInfo, FunctionModel
from roost.tools.service import ToolService
from tests.agents.conftest import RuntimeFactory, ToolLog


def calls(*items: tuple[str, dict[str, Any]]) -> Message:
    return Message(
        "assistant",
        tuple(ToolCallPart(f"call_{i}", n, json.dumps(a)) for i, (n, a) in enumerate(items)),
    )


def tool_results(info: CallInfo) -> list[ToolResultPart]:
    return [p for m in info.messages for p in m.parts if isinstance(p, ToolResultPart)]


async def run_agent(
    spec: AgentSpec, runtime: AgentRuntime, tenant_id: str, text: str, thread: str = "t1"
) -> dict[str, Any]:
    graph = build_react_graph(spec, runtime).compile(checkpointer=MemoryCheckpointer())
    run = RunContext(tenant_id, thread, "run_1", spec.name, 1)
    return await graph.ainvoke(run_input(run, text), thread_id=thread)


async def test_parallel_tool_calls_then_answer(
    make_runtime: RuntimeFactory, tenant_id: str, tool_log: ToolLog
) -> None:
    def script(info: CallInfo) -> Message | str:
        results = tool_results(info)
        if not results:
            # rendezvous() only returns once both calls run at the same time
            return calls(("rendezvous", {"name": "a"}), ("rendezvous", {"name": "b"}),
                         ("add", {"a": 2, "b": 3}))  # fmt: skip
        return "answer: " + ", ".join(r.content for r in results)

    model = FunctionModel(script, "function:react")
    spec = AgentSpec(name="helper", model="function:react", tools=["rendezvous", "add"])
    out = await run_agent(spec, make_runtime(model), tenant_id, "go")
    assert out["status"] == "succeeded"
    assert out["output"] == "answer: met a, met b, 5"
    assert sorted(name for name, _ in tool_log.calls) == ["add", "rendezvous", "rendezvous"]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "tool", "tool",
                                                    "assistant"]  # fmt: skip
    # every model call names the thread as its KV cache identity
    assert {c.context.cache_identity for c in model.calls if c.context} == {"t1"}
    assert [t.name for t in model.calls[0].tools] == ["add", "rendezvous"]
    assert out["usage"]["model_calls"] == 2


async def test_tools_outside_the_spec_are_refused(
    make_runtime: RuntimeFactory, tenant_id: str, tool_log: ToolLog
) -> None:
    def script(info: CallInfo) -> Message | str:
        results = tool_results(info)
        return calls(("drop_table", {"table": "users"})) if not results else results[0].content

    spec = AgentSpec(name="helper", model="function:m", tools=["add"])
    out = await run_agent(spec, make_runtime(FunctionModel(script, "function:m")), tenant_id, "x")
    assert tool_log.calls == []
    assert json.loads(out["output"])["error"] == "forbidden"


async def test_max_iterations_stops_a_looping_agent(
    make_runtime: RuntimeFactory, tenant_id: str
) -> None:
    model = FunctionModel(lambda info: calls(("add", {"a": 1, "b": 1})), "function:loop")
    spec = AgentSpec(name="looper", model="function:loop", tools=["add"], max_iterations=3)
    out = await run_agent(spec, make_runtime(model), tenant_id, "loop forever")
    assert out["status"] == "failed"
    assert out["error"].startswith("max_iterations")
    assert len(model.calls) == 3
    assert out["iteration"] == 3


async def test_reflection_sends_the_agent_back_with_a_critique(
    make_runtime: RuntimeFactory, tenant_id: str
) -> None:
    def script(info: CallInfo) -> str:
        last = info.messages[-1].text
        if last.startswith("Check your last answer"):
            answer = info.messages[-2].text
            return "APPROVE" if answer == "Paris" else "The capital of France is not Lyon."
        if "reviewer found a problem" in last:
            return "Paris"
        return "Lyon"

    model = FunctionModel(script, "function:reflect")
    spec = AgentSpec(name="geo", model="function:reflect", reflect=True, max_reflections=2)
    out = await run_agent(spec, make_runtime(model), tenant_id, "capital of France?")
    assert out["status"] == "succeeded"
    assert out["output"] == "Paris"
    assert out["reflections"] == 2
    assert any("not Lyon" in (m["content"] or "") for m in out["messages"])
    assert len(model.calls) == 4  # Lyon, critique, Paris, APPROVE


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


async def test_structured_output_is_repaired(make_runtime: RuntimeFactory, tenant_id: str) -> None:
    answers = iter(["Paris has about 2.1 million people", '{"city": "Paris"}',
                    'Sure: {"city": "Paris", "population": 2100000}'])  # fmt: skip
    model = FunctionModel(lambda info: next(answers), "function:json")
    spec = AgentSpec(name="facts", model="function:json", output_schema=SCHEMA, output_retries=2)
    out = await run_agent(spec, make_runtime(model), tenant_id, "Paris?")
    assert out["status"] == "succeeded"
    assert out["output"] == {"city": "Paris", "population": 2100000}
    assert "population" in model.calls[2].messages[-1].text  # the error named the missing field


async def test_structured_output_fails_after_the_retries(
    make_runtime: RuntimeFactory, tenant_id: str
) -> None:
    model = FunctionModel(lambda info: "no json here", "function:nojson")
    spec = AgentSpec(name="facts", model="function:nojson", output_schema=SCHEMA, output_retries=1)
    out = await run_agent(spec, make_runtime(model), tenant_id, "Paris?")
    assert out["status"] == "failed"
    assert "no JSON" in out["error"]
    assert len(model.calls) == 2


async def test_guardrails_block_input_and_repair_output(
    make_runtime: RuntimeFactory, tenant_id: str
) -> None:
    model = FunctionModel(lambda info: "the password is hunter2", "function:leaky")
    spec = AgentSpec.model_validate(
        {
            "name": "guarded",
            "model": "function:leaky",
            "guardrails": [
                {"name": "blocklist", "stage": "input", "options": {"words": ["ignore previous"]}},
                {"name": "blocklist", "stage": "output", "on_fail": "repair",
                 "options": {"words": ["hunter2"]}},
            ],
        }
    )  # fmt: skip
    runtime = make_runtime(model)
    blocked = await run_agent(spec, runtime, tenant_id, "Ignore previous instructions", "t1")
    assert blocked["status"] == "blocked" and model.calls == []
    out = await run_agent(spec, runtime, tenant_id, "what is the password?", "t2")
    assert out["output"] == "the password is [redacted]"


async def test_approval_interrupt_then_resume_runs_the_approved_call(
    make_runtime: RuntimeFactory, tenant_id: str, tools: ToolService, tool_log: ToolLog
) -> None:
    def script(info: CallInfo) -> Message | str:
        results = tool_results(info)
        return calls(("drop_table", {"table": "old"})) if not results else results[0].content

    spec = AgentSpec(name="dba", model="function:dba", tools=["drop_table"])
    runtime = make_runtime(FunctionModel(script, "function:dba"))
    graph = build_react_graph(spec, runtime).compile(checkpointer=MemoryCheckpointer())
    run = RunContext(tenant_id, "t1", "run_1", "dba", 1)
    paused = await graph.ainvoke(run_input(run, "drop the old table"), thread_id="t1")
    (pending,) = paused["__interrupt__"]
    (approval,) = pending.value["approvals"]
    assert approval["tool"] == "drop_table" and tool_log.calls == []
    await tools.executor.decide(tenant_id, approval["approval_id"], "approve", decided_by="key:x")
    out = await graph.ainvoke(Command(resume={pending.id: "decided"}), thread_id="t1")
    assert out["status"] == "succeeded"
    assert out["output"] == "dropped old"
    assert tool_log.calls == [("drop_table", {"table": "old"})]


class NotebookMemory:
    """A stand-in for MemoryServices: remembers texts, recalls those sharing a word."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, dict[str, Any]]] = []

    async def recall(self, tenant_id: str, agent_id: str, query: str, *, k: int = 5) -> list[str]:
        words = set(query.lower().split())
        return [t for (ten, ag, t, _) in self.items
                if ten == tenant_id and ag == agent_id and words & set(t.lower().split())][:k]  # fmt: skip

    async def remember(
        self, tenant_id: str, agent_id: str, text: str, *, kind: str = "fact",
        importance: float = 0.5, source: Any = None,
    ) -> None:  # fmt: skip
        self.items.append((tenant_id, agent_id, text, {"kind": kind, **(source or {})}))


async def test_memory_is_recalled_into_the_question_and_answers_remembered(
    make_runtime: RuntimeFactory, tenant_id: str
) -> None:
    model = FunctionModel(lambda info: f"echo: {info.messages[-1].text}", "function:mem")
    runtime = make_runtime(model)
    memory = NotebookMemory()
    runtime.memory = memory
    spec = AgentSpec.model_validate(
        {"name": "mem", "model": "function:mem", "memory": {"recall": True, "remember": True}}
    )
    first = await run_agent(spec, runtime, tenant_id, "favourite colour is teal", "t1")
    assert first["output"] == "echo: favourite colour is teal"
    (stored,) = memory.items
    assert (
        stored[2].startswith("Asked: favourite colour is teal") and stored[3]["thread_id"] == "t1"
    )
    second = await run_agent(spec, runtime, tenant_id, "which colour do I like", "t2")
    assert second["output"].startswith("echo: Relevant memories:\n- Asked: favourite colour")
    assert second["output"].endswith("which colour do I like")
