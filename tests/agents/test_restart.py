"""Runs queued before a restart execute after it: the worker launches at start-up when
unfinished runs wait, and DBOS hands it the queued workflow."""

from __future__ import annotations

import asyncio

from dbos import DBOSClient

from roost.agents import durable
from roost.llm.testing import FunctionModel
from tests.agents.conftest import ToolLog, make_test_tools
from tests.agents.test_api import answer_with_tools, sse_events
from tests.server.conftest import AppFactory


async def test_a_run_queued_before_a_restart_runs_after_it(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        service = app.state.agents

        async def enqueue_only() -> DBOSClient:
            # The first process's worker is gone before it picks the run up: launch and
            # stop one (that creates DBOS's tables), then only enqueue.
            if service._client is None:
                url = service.runs_url
                await asyncio.to_thread(durable.acquire, service.host_key, service, url, 1)
                await asyncio.to_thread(durable.release, service.host_key)
                service._client = await asyncio.to_thread(DBOSClient, system_database_url=url)
            return service._client

        service._launch = enqueue_only
        spec = {"name": "calc", "model": "function:agent", "tools": ["add"]}
        assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        queued = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "x", "mode": "background"}
        )
        run_id = queued.json()["id"]
        assert (await client.get(f"/v1/runs/{run_id}")).json()["status"] == "queued"

    async with make_app() as (app, client):
        client.headers.update(auth)
        assert app.state.agents._launched  # unfinished runs made it launch at start
        app.state.llm.router.registry.register(FunctionModel(answer_with_tools, "function:agent"))
        tools = make_test_tools(ToolLog())
        app.state.tools.registry.add_for_tenant(app.state.default_tenant_id, tools)
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            events = await sse_events(response)
        assert events[-1]["run"]["status"] == "succeeded", events[-1]
        assert events[-1]["run"]["output"] == "the sum is 42"
