"""The coordinator as a durable run: planner → workers → synthesizer on the run service.

One compiled graph per tenant serves every coordinator run of that tenant; what differs
between runs (the planner's model, the worker agents, the run's identity) travels in the
graph state as ``setup``, so whichever worker claims the run, or takes it over after a
crash, rebuilds the same coordinator from the checkpoint alone. A finished wave of
subtasks is checkpointed and never runs again.

Worker agents run under the coordinator's run id: a cancel of the coordinator run stops
them, and their events (tokens, tool calls) reach the coordinator run's subscribers,
between ``subtask_start`` and ``subtask_end`` events naming the subtask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from roost.agents.coordinator import (
    AgentWorkers,
    Coordinator,
    CoordinatorState,
    coordinator_graph,
)
from roost.agents.registry import AgentRegistry
from roost.agents.runtime import AgentRuntime
from roost.errors import InvalidRequest
from roost.graph import StateGraph
from roost.llm.base import RequestContext

# The run record's agent: not a valid agent name (names have no ':'), so never a clash.
COORDINATOR_AGENT = "coordinator:run"
AGENT_ID = "coordinator"


@dataclass(frozen=True, slots=True)
class CoordinatorSetup:
    """What one coordinator run needs besides the task; JSON in the graph state."""

    tenant_id: str
    thread_id: str
    run_id: str
    model: str
    agents: dict[str, str] = field(default_factory=dict)  # name -> description
    max_revisions: int = 1

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, value: dict[str, Any] | None) -> CoordinatorSetup:
        if not value:
            raise InvalidRequest("a coordinator run needs its setup in the state")
        return cls(**value)


def coordinator_input(
    setup: CoordinatorSetup, task: str, plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The graph input that starts one coordinator run."""
    return {"task": task, "plan": plan, "setup": setup.to_state(), "usage": {}}


async def roster(
    registry: AgentRegistry, tenant_id: str, names: Sequence[str] | None
) -> dict[str, str]:
    """The worker agents (name -> description): the named ones, which must exist (404
    otherwise), or every agent of the tenant."""
    if names:
        if len(set(names)) != len(names):
            raise InvalidRequest("agents must be distinct names", param="agents")
        found = [await registry.get(tenant_id, name) for name in names]
    else:
        found = await registry.list(tenant_id)
        if not found:
            raise InvalidRequest("this tenant has no agents to coordinate", param="agents")
    return {f.name: f.spec.description or f.name for f in found}


class DurableCoordinator:
    """The coordinator graph's nodes for durable runs: each builds the run's coordinator
    from the ``setup`` in its state and delegates to it."""

    def __init__(self, registry: AgentRegistry, runtime: AgentRuntime) -> None:
        self.registry = registry
        self.runtime = runtime

    def builder(self) -> StateGraph:
        return coordinator_graph(self)

    def _coordinator(self, setup: CoordinatorSetup) -> Coordinator:
        self.runtime.check_cancelled(setup.run_id)
        workers = AgentWorkers(
            self.registry, self.runtime, setup.tenant_id, setup.thread_id, setup.run_id
        )
        context = RequestContext(
            setup.tenant_id, agent_id=AGENT_ID, cache_identity=f"{setup.thread_id}:coordinator"
        )
        return Coordinator(
            self.runtime.llm, setup.model, setup.agents, workers,
            context=context, max_revisions=setup.max_revisions,
        )  # fmt: skip

    async def plan(self, state: CoordinatorState) -> dict[str, Any]:
        setup = CoordinatorSetup.from_state(state.get("setup"))
        update = await self._coordinator(setup).plan(state)
        self.runtime.emit(setup.run_id, {"event": "plan", "plan": update["plan"]})
        return update

    def dispatch(self, state: CoordinatorState) -> Any:
        setup = CoordinatorSetup.from_state(state.get("setup"))
        return self._coordinator(setup).dispatch(state)

    async def work(self, arg: dict[str, Any]) -> dict[str, Any]:
        setup = CoordinatorSetup.from_state(arg.get("setup"))
        coordinator = self._coordinator(setup)
        subtask = arg["subtask"]
        announce = {"subtask": subtask["id"], "agent": subtask["agent"]}
        self.runtime.emit(setup.run_id, {"event": "subtask_start", **announce})
        assert isinstance(coordinator.workers, AgentWorkers)
        measured = _MeasuredWorkers(coordinator.workers)
        coordinator.workers = measured
        update = await coordinator.work(arg)
        failed = update.get("failures", {}).get(subtask["id"])
        self.runtime.emit(
            setup.run_id,
            {"event": "subtask_end", **announce, "status": "failed" if failed else "succeeded",
             **({"error": failed} if failed else {})},
        )  # fmt: skip
        return {**update, "usage": measured.usage}

    async def synthesize(self, state: CoordinatorState) -> dict[str, Any]:
        setup = CoordinatorSetup.from_state(state.get("setup"))
        return await self._coordinator(setup).synthesize(state)

    async def check(self, state: CoordinatorState) -> dict[str, Any]:
        setup = CoordinatorSetup.from_state(state.get("setup"))
        return await self._coordinator(setup).check(state)

    async def fail(self, state: CoordinatorState) -> dict[str, Any]:
        setup = CoordinatorSetup.from_state(state.get("setup"))
        return await self._coordinator(setup).fail(state)


class _MeasuredWorkers:
    """One subtask's worker, keeping what it cost for the run's usage."""

    def __init__(self, workers: AgentWorkers) -> None:
        self.workers = workers
        self.usage: dict[str, int] = {}

    async def run(self, agent: str, prompt: str, subtask_id: str) -> str:
        text, self.usage = await self.workers.run_with_usage(agent, prompt, subtask_id)
        return text
