"""The process-wide run executor (DBOS) outlives no server: a first run whose caller goes
away while DBOS launches (a client disconnecting, an evaluation cancelled at shutdown)
still leaves nothing running once the server closes, so the next server executes its own
runs instead of having them polled for in a database that is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from roost.errors import Overloaded
from roost.runs import executor
from tests.agents.test_graph_runs import build
from tests.server.conftest import AppFactory


async def test_a_launch_whose_caller_goes_away_ends_with_its_server(
    make_app: AppFactory, auth: dict[str, str], tmp_path: Path
) -> None:
    async with make_app() as (app, _):
        starting = asyncio.create_task(app.state.agents._ensure_executor())
        await asyncio.sleep(0)  # the launch is under way
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
    assert executor._launched["users"] == 0 and not executor._hosts

    async with make_app(env={"ROOST_HOME": str(tmp_path / "next")}) as (app, client):
        client.headers.update(auth)
        app.state.agents.graphs["counter"] = build(tmp_path / "graph.db")
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        started = await client.post(
            f"/v1/threads/{thread}/runs", json={"graph": "counter", "input": {"count": 1}}
        )
        assert started.json()["status"] == "interrupted", started.text


async def test_a_closed_server_takes_no_new_runs(make_app: AppFactory) -> None:
    async with make_app() as (app, _):
        service = app.state.agents
    with pytest.raises(Overloaded, match="shutting down"):
        await service._ensure_executor()
    assert executor._launched["users"] == 0


async def test_one_process_executes_the_runs_of_one_database(tmp_path: Path) -> None:
    idle: Any = object()  # a host never asked to run anything
    first = f"sqlite:///{tmp_path / 'a.db'}"
    await executor.launch("a", idle, system_database_url=first, concurrency=1, executor_id="t-a")
    try:
        with pytest.raises(RuntimeError, match="one database"):
            await executor.launch(
                "b", idle, system_database_url=f"sqlite:///{tmp_path / 'b.db'}",
                concurrency=1, executor_id="t-b",
            )  # fmt: skip
        assert executor._launched["users"] == 1 and list(executor._hosts) == ["a"]
    finally:
        await executor.shutdown("a")
    assert executor._launched["users"] == 0
