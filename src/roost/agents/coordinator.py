"""Coordinator: runs a plan's subtasks on worker agents, in parallel where the DAG allows
(one ``Send`` per ready subtask), then a synthesizer combines the results and a quality
check may ask for one revision.

A failed worker is reported in the answer, not fatal, unless its subtask is ``required``;
subtasks that depend on a failed one still run, told what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Protocol, TypedDict

from roost.agents.planner import Plan, make_plan, validate_plan
from roost.agents.react import ReactAgent, add_usage, run_input
from roost.agents.registry import AgentRegistry
from roost.agents.run_setup import run_setup
from roost.agents.runtime import AgentRuntime, ModelCaller, RunContext
from roost.graph import END, START, MemoryCheckpointer, Send, StateGraph
from roost.llm.base import RequestContext
from roost.llm.messages import Message, ModelSettings, Response, ResponseDone

CHECK_PROMPT = (
    "Does the answer above fully solve the task using the results? Reply with exactly"
    " APPROVE, or with a short critique of what to improve."
)


def merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


def sum_usage(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    """Token counts of parallel branches add up."""
    return {key: left.get(key, 0) + right.get(key, 0) for key in left.keys() | right.keys()}


class CoordinatorState(TypedDict, total=False):
    task: str
    plan: dict[str, Any] | None
    results: Annotated[dict[str, str], merge]
    failures: Annotated[dict[str, str], merge]
    answer: str
    critique: str | None
    revisions: int
    status: str
    error: str | None
    usage: Annotated[dict[str, int], sum_usage]
    # A durable run's own set-up (model, agents, run identity), carried in the state so
    # any worker can run it: see roost.agents.coordinator_runs.
    setup: dict[str, Any]


class Workers(Protocol):
    """Runs one subtask on an agent; raises when the agent fails."""

    async def run(self, agent: str, prompt: str, subtask_id: str) -> str: ...


class AgentWorkers:
    """Workers are registered agents, each subtask on its own sub-thread (its own cache identity)."""

    def __init__(
        self,
        registry: AgentRegistry,
        runtime: AgentRuntime,
        tenant_id: str,
        thread_id: str,
        run_id: str | None = None,
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.tenant_id = tenant_id
        self.thread_id = thread_id
        self.run_id = run_id

    async def run(self, agent: str, prompt: str, subtask_id: str) -> str:
        return (await self.run_with_usage(agent, prompt, subtask_id))[0]

    async def run_with_usage(
        self, agent: str, prompt: str, subtask_id: str
    ) -> tuple[str, dict[str, int]]:
        """The subtask's answer and what it cost. Its run id is the parent run's when
        given, so a cancel of the parent stops it and its events join the parent's."""
        found = await self.registry.get(self.tenant_id, agent)
        graph = ReactAgent(found.spec, self.runtime).builder().compile(MemoryCheckpointer())
        thread = f"{self.thread_id}:{subtask_id}"
        run_id = self.run_id or f"{thread}:run"
        context = RunContext(self.tenant_id, thread, run_id, agent, found.version)
        # A worker agent's managed prompt resolves as at any run's start.
        setup, _ = await run_setup(
            found.spec, self.tenant_id, thread, None, prompts=self.runtime.prompts, experiments=None
        )
        out = await graph.ainvoke(run_input(context, prompt, None, setup), thread_id=thread)
        if out.get("status") != "succeeded":
            raise RuntimeError(out.get("error") or f"agent {agent} ended {out.get('status')}")
        output = out.get("output")
        text = output if isinstance(output, str) else json.dumps(output)
        return text, dict(out.get("usage") or {})


class Coordinator:
    """Builds the coordinator graph for a set of worker agents (name -> description)."""

    def __init__(
        self,
        llm: ModelCaller,
        model: str,
        agents: Mapping[str, str],
        workers: Workers,
        *,
        context: RequestContext,
        max_revisions: int = 1,
    ) -> None:
        self.llm = llm
        self.model = model
        self.agents = dict(agents)
        self.workers = workers
        self.context = context
        self.max_revisions = max_revisions

    def builder(self) -> StateGraph:
        return coordinator_graph(self)

    async def plan(self, state: CoordinatorState) -> dict[str, Any]:
        given = state.get("plan")
        if given:
            plan = validate_plan(Plan.model_validate(given), self.agents)
        else:
            plan = await make_plan(
                self.llm, self.model, state["task"], self.agents, context=self.context
            )
        return {"plan": plan.model_dump(), "results": {}, "failures": {}, "revisions": 0}

    def dispatch(self, state: CoordinatorState) -> Any:
        plan = Plan.model_validate(state["plan"])
        results, failures = state.get("results", {}), state.get("failures", {})
        if any(s.required and s.id in failures for s in plan.subtasks):
            return "fail"
        done = set(results) | set(failures)
        pending = [s for s in plan.subtasks if s.id not in done]
        if not pending:
            return "synthesize"
        ready = [s for s in pending if set(s.depends_on) <= done]
        return [
            Send("work", {"task": state["task"], "subtask": s.model_dump(),
                          "inputs": {d: results.get(d) for d in s.depends_on},
                          "missing": {d: failures[d] for d in s.depends_on if d in failures},
                          "setup": state.get("setup")})
            for s in ready
        ]  # fmt: skip

    async def work(self, arg: dict[str, Any]) -> dict[str, Any]:
        subtask = arg["subtask"]
        prompt = f"Overall task: {arg['task']}\nYour subtask: {subtask['description']}"
        for dependency, result in arg["inputs"].items():
            if result is not None:
                prompt += f"\nResult of {dependency}: {result}"
        for dependency, error in arg["missing"].items():
            prompt += f"\n{dependency} failed ({error}); do without it."
        try:
            output = await self.workers.run(subtask["agent"], prompt, subtask["id"])
        except Exception as exc:  # a worker's failure is reported, not fatal (see dispatch)
            return {"failures": {subtask["id"]: f"{type(exc).__name__}: {exc}"}}
        return {"results": {subtask["id"]: output}}

    async def synthesize(self, state: CoordinatorState) -> dict[str, Any]:
        lines = [f"Task: {state['task']}", "Results of the subtasks:"]
        lines += [f"- {k}: {v}" for k, v in state.get("results", {}).items()]
        if state.get("failures"):
            lines.append("These subtasks failed; say what is missing:")
            lines += [f"- {k}: {v}" for k, v in state["failures"].items()]
        if state.get("critique"):
            lines.append(f"A reviewer asked for changes to your draft: {state['critique']}")
            lines.append(f"Your draft: {state.get('answer', '')}")
        lines.append("Write the final answer.")
        response = await self._ask([Message.user("\n".join(lines))])
        return {"answer": response.text, "critique": None, "usage": add_usage({}, response)}

    async def check(self, state: CoordinatorState) -> dict[str, Any]:
        if state.get("revisions", 0) >= self.max_revisions:
            return {"status": _status(state)}
        response = await self._ask(
            [Message.user(f"Task: {state['task']}\nAnswer: {state['answer']}\n{CHECK_PROMPT}")]
        )
        verdict = response.text.strip()
        usage = add_usage({}, response)
        if verdict.upper().startswith("APPROVE"):
            return {"status": _status(state), "usage": usage}
        return {"critique": verdict, "revisions": state.get("revisions", 0) + 1, "usage": usage}

    async def fail(self, state: CoordinatorState) -> dict[str, Any]:
        failures = state.get("failures", {})
        plan = Plan.model_validate(state["plan"])
        required = [s.id for s in plan.subtasks if s.required and s.id in failures]
        why = "; ".join(f"{i}: {failures[i]}" for i in required)
        return {"status": "failed", "error": f"required subtask failed: {why}"}

    async def _ask(self, messages: list[Message]) -> Response:
        final: Response | None = None
        async for event in self.llm.request_stream(
            self.model, messages, ModelSettings(), (), context=self.context
        ):
            if isinstance(event, ResponseDone):
                final = event.response
        assert final is not None
        return final


class CoordinatorNodes(Protocol):
    """What the coordinator graph calls: :class:`Coordinator`, or a durable run's wrapper."""

    async def plan(self, state: CoordinatorState) -> dict[str, Any]: ...
    def dispatch(self, state: CoordinatorState) -> Any: ...
    async def work(self, arg: dict[str, Any]) -> dict[str, Any]: ...
    async def synthesize(self, state: CoordinatorState) -> dict[str, Any]: ...
    async def check(self, state: CoordinatorState) -> dict[str, Any]: ...
    async def fail(self, state: CoordinatorState) -> dict[str, Any]: ...


def coordinator_graph(nodes: CoordinatorNodes) -> StateGraph:
    """plan → work (one Send per ready subtask, wave after wave) → synthesize → check."""
    g = StateGraph(CoordinatorState)
    g.add_node("plan", nodes.plan)
    g.add_node("work", nodes.work)
    g.add_node("gather", lambda state: {})
    g.add_node("synthesize", nodes.synthesize)
    g.add_node("check", nodes.check)
    g.add_node("fail", nodes.fail)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", nodes.dispatch, ["work", "synthesize", "fail"])
    g.add_edge("work", "gather")
    g.add_conditional_edges("gather", nodes.dispatch, ["work", "synthesize", "fail"])
    g.add_edge("synthesize", "check")
    g.add_conditional_edges(
        "check", lambda s: "synthesize" if s.get("critique") else END, ["synthesize", END]
    )
    g.add_edge("fail", END)
    return g


def _status(state: CoordinatorState) -> str:
    return "partial" if state.get("failures") else "succeeded"
