"""End to end on the real bundled model: a ReAct agent with one tool, through the HTTP API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from roost.agents.procedures import HINTS_HEADER
from roost.agents.run_routing import RunRouting
from roost.engine import Engine
from roost.tools.base import tool_from_function
from roost.tools.context import ToolContext
from roost.tools.toolsets import StaticToolset
from tests.server.conftest import AppFactory

pytestmark = pytest.mark.slow


async def lookup_word(ctx: ToolContext, word: str) -> str:
    """Look up the meaning of an English word."""
    return f"{word}: a place where birds rest at night"


@pytest.fixture
async def app_client(
    make_app: AppFactory, auth: dict[str, str], engine: Engine
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    def use_engine(app: FastAPI) -> None:
        app.state.engine = engine

    async with make_app(customize=use_engine) as (app, client):
        client.headers.update(auth)
        toolset = StaticToolset([tool_from_function(lookup_word)])
        app.state.tools.registry.add_for_tenant(app.state.default_tenant_id, toolset)
        yield app, client


async def test_react_agent_with_one_tool_on_the_local_model(
    app_client: tuple[FastAPI, httpx.AsyncClient], engine: Engine
) -> None:
    _, client = app_client
    spec: dict[str, Any] = {
        "name": "dictionary",
        "model": f"local:{engine.model_name}",
        "instructions": "You answer questions about words. Use the lookup_word tool.",
        "tools": ["lookup_word"],
        "first_tool_choice": "lookup_word",
        "max_iterations": 3,
        "max_tokens": 48,
        "temperature": 0,
    }
    assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
    thread = (await client.post("/v1/threads", json={})).json()["id"]
    run = await client.post(
        f"/v1/threads/{thread}/runs",
        json={"agent": "dictionary", "input": "What does the word roost mean?", "mode": "wait"},
    )
    body = run.json()
    assert body["status"] == "succeeded", body
    state = (await client.get(f"/v1/threads/{thread}")).json()["values"]
    roles = [m["role"] for m in state["messages"]]
    assert roles[:3] == ["user", "assistant", "tool"], roles
    call = state["messages"][1]["tool_calls"][0]
    assert call["name"] == "lookup_word" and "roost" in call["arguments"].lower()
    assert "birds rest" in state["messages"][2]["content"]
    assert body["output"], body
    # the second model turn extends the first turn's prompt on the same cache identity,
    # so its prompt prefix comes from the KV cache instead of being prefilled again
    assert body["usage"]["model_calls"] >= 2
    assert body["usage"]["cached_input_tokens"] > 0, body["usage"]


async def test_a_coordinator_run_on_the_local_model(
    app_client: tuple[FastAPI, httpx.AsyncClient], engine: Engine
) -> None:
    """The planner's plan is a grammar-constrained tool call, so even the 135M model
    plans over the real agents; each subtask runs on its agent, then the answer."""
    _, client = app_client
    model = f"local:{engine.model_name}"
    agents: list[dict[str, Any]] = [
        {"name": "dictionary", "description": "looks up what English words mean",
         "model": model, "tools": ["lookup_word"], "first_tool_choice": "lookup_word",
         "instructions": "You answer questions about words. Use the lookup_word tool.",
         "max_iterations": 3, "max_tokens": 48, "temperature": 0},
        {"name": "writer", "description": "writes one short sentence", "model": model,
         "instructions": "Write one short sentence.", "max_iterations": 1, "max_tokens": 32,
         "temperature": 0},
    ]  # fmt: skip
    for spec in agents:
        assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
    response = await client.post(
        "/v1/coordinator/runs",
        json={"task": "What does the word roost mean? Answer in one sentence.",
              "max_revisions": 0, "mode": "wait"},
    )  # fmt: skip
    run = response.json()
    assert run["status"] == "succeeded", (run["error"], run["output"])
    plan = run["output"]["plan"]["subtasks"]
    assert plan and {s["agent"] for s in plan} <= {"dictionary", "writer"}
    assert set(run["output"]["results"]) | set(run["output"]["failures"]) == {s["id"] for s in plan}
    assert run["output"]["answer"].strip(), run["output"]
    assert run["usage"]["model_calls"] >= len(plan) + 1


async def test_learned_routing_and_procedural_memory_on_the_local_model(
    make_app: AppFactory, auth: dict[str, str], engine: Engine
) -> None:
    """A routed spec on the bundled model: the router picks a group for each run and
    learns from its outcome; the first run's tool sequence is offered to the second."""
    groups = {name: {"deployments": [f"local:{engine.model_name}"]} for name in ("small", "tiny")}

    def use_engine(app: FastAPI) -> None:
        app.state.engine = engine

    env = {"ROOST_LLM__GROUPS": json.dumps(groups)}
    async with make_app(env=env, customize=use_engine) as (app, client):
        client.headers.update(auth)
        toolset = StaticToolset([tool_from_function(lookup_word)])
        app.state.tools.registry.add_for_tenant(app.state.default_tenant_id, toolset)
        routing = app.state.agents.runtime.routing = await RunRouting.open(
            app.state.platform.database
        )
        spec: dict[str, Any] = {
            "name": "dictionary", "model": "small", "tools": ["lookup_word"],
            "instructions": "You answer questions about words. Use the lookup_word tool.",
            "first_tool_choice": "lookup_word", "max_iterations": 3, "max_tokens": 48,
            "temperature": 0, "route": {"candidates": ["small", "tiny"]},
        }  # fmt: skip
        assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        outputs = []
        for word in ("roost", "perch"):
            thread = (await client.post("/v1/threads", json={})).json()["id"]
            body = {"agent": "dictionary", "input": f"What does the word {word} mean?",
                    "mode": "wait"}  # fmt: skip
            run = (await client.post(f"/v1/threads/{thread}/runs", json=body)).json()
            assert run["status"] == "succeeded", run
            async with client.stream("GET", f"/v1/runs/{run['id']}/events") as response:
                events = [json.loads(line[6:]) async for line in response.aiter_lines()
                          if line.startswith("data: ")]  # fmt: skip
            (route,) = [e for e in events if e["event"] == "route"]
            assert route["model"] in ("small", "tiny")
            outputs.append((await client.get(f"/v1/threads/{thread}")).json()["values"])
        router = await routing.store.load(app.state.default_tenant_id, "dictionary")
        assert router is not None and router.num_updates == 2  # both outcomes learned
        first_message = outputs[1]["messages"][0]["content"]
        assert first_message.startswith(HINTS_HEADER), first_message
        assert "lookup_word" in first_message and "perch" in first_message
