"""Runs outlive the process that queued them: a run queued by a server that only
enqueues executes in the next one, and a run that finished before a restart still
streams its events (ending at once) after it."""

from __future__ import annotations

import asyncio

from roost.llm.testing import FunctionModel
from tests.agents.conftest import ToolLog, make_test_tools
from tests.agents.test_api import answer_with_tools, sse_events
from tests.server.conftest import AppFactory

SPEC = {"name": "calc", "model": "function:agent", "tools": ["add"]}


def _serve_calc(app: object) -> None:
    state = app.state  # type: ignore[attr-defined]
    state.llm.router.registry.register(FunctionModel(answer_with_tools, "function:agent"))
    state.tools.registry.add_for_tenant(state.default_tenant_id, make_test_tools(ToolLog()))


async def test_a_run_queued_before_a_restart_runs_after_it(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    # The first process only enqueues (runs.workers = 0): nothing executes the run there.
    async with make_app(env={"ROOST_RUNS__WORKERS": "0"}) as (app, client):
        client.headers.update(auth)
        assert not app.state.agents.executes
        _serve_calc(app)  # every process offers what its specs name (as a plugin would)
        assert (await client.post("/v1/agents", json={"spec": SPEC})).status_code == 201
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        queued = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "x", "mode": "background"}
        )
        run_id = queued.json()["id"]
        assert (await client.get(f"/v1/runs/{run_id}")).json()["status"] == "queued"
        assert not app.state.agents.launched

    async with make_app() as (app, client):
        client.headers.update(auth)
        assert app.state.agents.launched  # unfinished runs made it launch at start
        _serve_calc(app)
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            events = await sse_events(response)
        assert events[-1]["run"]["status"] == "succeeded", events[-1]
        assert events[-1]["run"]["output"] == "the sum is 42"


async def test_events_of_a_run_finished_before_a_restart_replay_and_end(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        _serve_calc(app)
        assert (await client.post("/v1/agents", json={"spec": SPEC})).status_code == 201
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        done = await client.post(f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "x"})
        assert done.json()["status"] == "succeeded"
        run_id = done.json()["id"]

    async with make_app() as (app, client):
        client.headers.update(auth)
        # Before the change, this answered 200 and then sent nothing, forever.
        async with asyncio.timeout(10):
            async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
                assert response.status_code == 200
                events = await sse_events(response)
        kinds = [e["event"] for e in events]
        assert kinds[0] == "run_start"
        assert "tool_result" in kinds
        assert kinds[-1] == "run_end"
        assert events[-1]["run"]["status"] == "succeeded"
