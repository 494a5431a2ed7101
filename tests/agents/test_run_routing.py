"""Routed specs: the learned router picks each run's model and learns from run outcomes."""

from __future__ import annotations

import pytest

from roost.agents.outcomes import record_outcome
from roost.agents.react import build_react_graph, run_input
from roost.agents.run_routing import RunRouting
from roost.agents.runtime import AgentRuntime, ExecutorToolRunner, RunContext
from roost.agents.spec import AgentSpec, parse_spec
from roost.agents.store import RunRecord
from roost.config import AgentRoutingSettings, load_settings
from roost.errors import ConfigError, InvalidRequest
from roost.graph import MemoryCheckpointer
from roost.llm.messages import Message, ToolCallPart
from roost.llm.testing import FunctionModel
from roost.platform import Platform
from roost.tools.service import ToolService
from tests.agents.conftest import llm_with
from tests.agents.test_api import agent_app, new_thread
from tests.server.conftest import AppFactory

SETTINGS = AgentRoutingSettings(min_updates=4, epsilon=0.0)
SPEC = AgentSpec(
    name="triage",
    tools=["add"],
    max_iterations=1,
    route={"candidates": ["function:small", "function:large"],
           "keywords": {"function:large": ["prove"]}},
)  # fmt: skip


def loops_on_tools(_info: object) -> Message:
    """The small model never stops calling tools: with max_iterations 1 its runs fail."""
    return Message("assistant", (ToolCallPart("c", "add", '{"a": 1, "b": 1}'),))


async def run_once(
    runtime: AgentRuntime, tenant_id: str, n: int, task: str = "add these numbers"
) -> tuple[str, str]:
    """One run as the run service does it: the graph, then the outcome hook."""
    graph = build_react_graph(SPEC, runtime).compile(checkpointer=MemoryCheckpointer())
    run = RunContext(tenant_id, f"t{n}", f"run_{n}", SPEC.name, 1)
    out = await graph.ainvoke(run_input(run, task), thread_id=f"t{n}")
    status = "succeeded" if out["status"] == "succeeded" else "failed"
    record = RunRecord(run.run_id, tenant_id, run.thread_id, SPEC.name, 1, status, task,
                       usage=out["usage"])  # fmt: skip
    assert await record_outcome(runtime, record, out) is not None
    return out["route"]["arm"], out["route"]["source"]


async def test_the_router_learns_from_run_outcomes_and_keeps_it_across_restarts(
    platform: Platform, tools: ToolService, tenant_id: str
) -> None:
    small = FunctionModel(loops_on_tools, "function:small")
    large = FunctionModel(lambda _info: "2", "function:large")
    llm = llm_with(small, large)
    routing = await RunRouting.open(platform.database, SETTINGS)
    runtime = AgentRuntime(llm, ExecutorToolRunner(tools), routing=routing)

    # untrained: the spec's keyword rules pick (the first candidate unless a keyword matches)
    first = [await run_once(runtime, tenant_id, n) for n in range(4)]
    assert first == [("function:small", "fallback")] * 4
    assert len(small.calls) == 4 and not large.calls
    assert (await run_once(runtime, tenant_id, 99, "prove it"))[0] == "function:large"

    # trained: small always failed, so the router tries large, which succeeds and stays
    later = [await run_once(runtime, tenant_id, n) for n in range(4, 8)]
    assert later == [("function:large", "learned")] * 4

    # a new process over the same database remembers; another tenant starts from scratch
    reopened = AgentRuntime(llm, ExecutorToolRunner(tools),
                            routing=await RunRouting.open(platform.database, SETTINGS))  # fmt: skip
    assert await run_once(reopened, tenant_id, 8) == ("function:large", "learned")
    stored = await routing.store.load(tenant_id, "triage")
    assert stored is not None and stored.num_updates == 10
    assert await routing.store.load("ten_other", "triage") is None


async def test_the_run_service_feeds_outcomes_to_the_router(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    route = {"candidates": ["function:agent", "function:other"]}
    async with agent_app(
        make_app, auth, lambda _info: "done", more_models=("function:other",), route=route, tools=[]
    ) as (
        app,
        client,
        _,
    ):
        service = app.state.agents
        service.runtime.routing = await RunRouting.open(app.state.platform.database)
        thread = await new_thread(client)
        run = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "hi", "mode": "wait"}
        )
        assert run.json()["status"] == "succeeded", run.text
        tenant = app.state.default_tenant_id
        router = await service.runtime.routing.store.load(tenant, "calc")
        assert router is not None and router.num_updates == 1


def test_routes_and_routing_settings_are_validated() -> None:
    with pytest.raises(InvalidRequest, match="route"):
        parse_spec({"name": "x", "route": {"candidates": ["a:b"]}})
    with pytest.raises(InvalidRequest, match="unknown candidates"):
        parse_spec({"name": "x", "route": {"candidates": ["a:b", "a:c"], "keywords": {"z": []}}})
    with pytest.raises(ConfigError, match=r"agents\.routing\.epsilon"):
        load_settings(env={"ROOST_AGENTS__ROUTING__EPSILON": "2"})
    # specs without the newer fields keep their digest (re-creating finds the same version)
    assert AgentSpec(name="x").digest() == AgentSpec(name="x", context={}).digest()
