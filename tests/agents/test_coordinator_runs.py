"""The coordinator as a durable run over HTTP: plan → worker agents → synthesis, streamed,
cancelled, refused before queueing, and kept within its tenant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from roost.llm.messages import Message, ToolCallPart
from roost.llm.testing import CallInfo, FunctionModel
from roost.tools.base import tool_from_function
from roost.tools.context import ToolContext
from roost.tools.toolsets import StaticToolset
from tests.agents.test_api import sse_events
from tests.server.conftest import AppFactory
from tests.support.tool_results import tool_texts

PLAN = {
    "subtasks": [
        {"id": "facts", "description": "find the facts", "agent": "researcher"},
        {"id": "essay", "description": "write it up", "agent": "writer",
         "depends_on": ["facts"]},
    ]
}  # fmt: skip


def boss(info: CallInfo) -> Message | str:
    """Plans with the plan tool, synthesizes from the results, approves its answer."""
    text = info.messages[-1].text
    if text.startswith("Break the task"):
        return Message("assistant", (ToolCallPart("plan_0", "submit_plan", json.dumps(PLAN)),))
    if "Reply with exactly APPROVE" in text:
        return "APPROVE"
    return "final: " + " | ".join(
        line.removeprefix("- ") for line in text.splitlines() if line.startswith("- ")
    )


def worker(info: CallInfo) -> Message | str:
    """Looks the word up once, then answers with what the lookup said."""
    results = tool_texts(info)
    if not results:
        return Message("assistant", (ToolCallPart("c0", "lookup", '{"key": "roost"}'),))
    return f"{info.context.agent_id if info.context else '?'} found {results[-1]}"


class Gate:
    """A tool that holds a worker until the test lets it go (or cancels the run)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def toolset(self) -> StaticToolset:
        async def lookup(ctx: ToolContext, key: str) -> str:
            """Look a word up."""
            self.entered.set()
            await self.release.wait()
            return "a place where birds rest"

        return StaticToolset([tool_from_function(lookup)])


@asynccontextmanager
async def coordinator_app(
    make_app: AppFactory, auth: dict[str, str], gate: Gate
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with make_app() as (app, client):
        client.headers.update(auth)
        registry = app.state.llm.router.registry
        registry.register(FunctionModel(boss, "function:boss"))
        registry.register(FunctionModel(worker, "function:worker"))
        app.state.tools.registry.add_for_tenant(app.state.default_tenant_id, gate.toolset())
        for name, description in (("researcher", "finds facts"), ("writer", "writes prose")):
            spec = {"name": name, "description": description, "model": "function:worker",
                    "tools": ["lookup"]}  # fmt: skip
            created = await client.post("/v1/agents", json={"spec": spec})
            assert created.status_code == 201, created.text
        yield app, client


async def test_a_coordinator_run_plans_works_and_synthesizes(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    gate = Gate()
    gate.release.set()
    async with coordinator_app(make_app, auth, gate) as (_, client):
        response = await client.post(
            "/v1/coordinator/runs",
            json={"task": "an essay on roosts", "model": "function:boss", "mode": "wait"},
        )
        assert response.status_code == 200, response.text
        run = response.json()
        assert run["status"] == "succeeded", run
        assert run["agent"] == "coordinator:run"
        output = run["output"]
        assert output["plan"]["subtasks"][1]["depends_on"] == ["facts"]
        assert output["results"] == {
            "facts": "researcher found a place where birds rest",
            "essay": "writer found a place where birds rest",
        }
        assert output["answer"].startswith("final: facts: researcher found")
        assert output["failures"] == {}
        # two workers x two model calls, plus the synthesizer and the quality check
        assert run["usage"]["model_calls"] == 6, run["usage"]
        again = await client.get(f"/v1/coordinator/runs/{run['id']}")
        assert again.json()["status"] == "succeeded"
        state = (await client.get(f"/v1/threads/{run['thread_id']}")).json()
        assert state["values"]["answer"] == output["answer"]


async def test_a_coordinator_run_streams_its_plan_and_subtasks(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    gate = Gate()
    gate.release.set()
    async with coordinator_app(make_app, auth, gate) as (_, client):
        body = {"task": "an essay", "agents": ["researcher", "writer"], "plan": PLAN,
                "model": "function:boss", "mode": "stream"}  # fmt: skip
        async with client.stream("POST", "/v1/coordinator/runs", json=body) as response:
            assert response.status_code == 200
            events = await sse_events(response)
        kinds = [e["event"] for e in events]
        assert kinds[0] == "run_start" and kinds[-1] == "run_end"
        subtasks = [(e["event"], e["subtask"]) for e in events if "subtask" in e]
        assert subtasks == [
            ("subtask_start", "facts"), ("subtask_end", "facts"),
            ("subtask_start", "essay"), ("subtask_end", "essay"),
        ]  # fmt: skip
        # the workers' own events reach the coordinator run's subscribers
        assert kinds.count("tool_call") == 2
        assert events[-1]["run"]["status"] == "succeeded"


async def test_cancelling_a_coordinator_run_stops_its_workers(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    gate = Gate()  # never released: the first worker waits in its tool
    async with coordinator_app(make_app, auth, gate) as (_, client):
        body = {"task": "an essay", "plan": PLAN, "model": "function:boss", "mode": "background"}
        started = await client.post("/v1/coordinator/runs", json=body)
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        await asyncio.wait_for(gate.entered.wait(), 30)
        cancelled = await client.post(f"/v1/runs/{run_id}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            events = await sse_events(response)
        assert events[-1]["event"] == "run_end"
        assert events[-1]["run"]["status"] == "cancelled"
        final = (await client.get(f"/v1/runs/{run_id}")).json()
        assert final["status"] == "cancelled" and final["output"] is None


async def test_bad_coordinator_runs_are_refused_before_queueing(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with coordinator_app(make_app, auth, Gate()) as (app, client):
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        unknown = await client.post(
            "/v1/coordinator/runs", json={"task": "x", "agents": ["nobody"], "thread_id": thread}
        )
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")
        assert "nobody" in unknown.json()["detail"]
        bad_plan = {"subtasks": [{"id": "a", "description": "d", "agent": "researcher",
                                  "depends_on": ["a"]}]}  # fmt: skip
        invalid = await client.post(
            "/v1/coordinator/runs", json={"task": "x", "plan": bad_plan, "thread_id": thread}
        )
        assert invalid.status_code == 400
        assert "depends on itself" in invalid.json()["detail"]
        empty = await client.post("/v1/coordinator/runs", json={"task": ""})
        assert empty.status_code in (400, 422)
        runs = (await client.get(f"/v1/threads/{thread}/runs")).json()["data"]
        assert runs == []  # nothing was queued

        # another tenant sees none of it
        platform = app.state.platform
        other = await platform.tenants.create("someone-else")
        _, key = await platform.api_keys.create(other.id, "ordinary")
        headers = {"Authorization": f"Bearer {key}"}
        mine = await client.post(
            "/v1/coordinator/runs",
            json={"task": "x", "plan": PLAN, "model": "function:boss", "mode": "background"},
        )
        theirs = await client.get(f"/v1/coordinator/runs/{mine.json()['id']}", headers=headers)
        assert theirs.status_code == 404
        nobody = await client.post(
            "/v1/coordinator/runs", json={"task": "x", "agents": ["researcher"]}, headers=headers
        )
        assert nobody.status_code == 404  # their tenant has no agent of that name
        await client.post(f"/v1/runs/{mine.json()['id']}/cancel")
