"""Runs of plain registered graphs (``{"graph": name}``): durable, interruptible, resumable."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from roost.graph import END, START, SqliteCheckpointer, StateGraph, interrupt
from tests.server.conftest import AppFactory


class Counter(TypedDict, total=False):
    count: Annotated[int, operator.add]
    answer: str


def build(path: Path) -> Any:
    def count(state: Counter) -> dict[str, Any]:
        return {"count": 1}

    def ask(state: Counter) -> dict[str, Any]:
        return {"answer": interrupt({"question": "go on?", "count": state["count"]})}

    g = StateGraph(Counter)
    g.add_node("count", count)
    g.add_node("ask", ask)
    g.add_edge(START, "count")
    g.add_edge("count", "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=SqliteCheckpointer(path))


async def test_graph_run_pauses_and_resumes(
    make_app: AppFactory, auth: dict[str, str], tmp_path: Path
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        app.state.agents.graphs["counter"] = build(tmp_path / "graph.db")
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        run = (
            await client.post(
                f"/v1/threads/{thread}/runs", json={"graph": "counter", "input": {"count": 41}}
            )
        ).json()
        assert run["status"] == "interrupted", run
        (pending,) = run["interrupts"]
        assert pending["value"] == {"question": "go on?", "count": 42}
        resumed = await client.post(
            f"/v1/runs/{run['id']}/resume",
            json={"answers": {pending["id"]: "yes"}, "mode": "wait"},
        )
        body = resumed.json()
        assert body["status"] == "succeeded", body
        assert body["output"] == {"count": 42, "answer": "yes"}
        state = (await client.get(f"/v1/threads/{thread}")).json()
        assert state["values"] == {"count": 42, "answer": "yes"}

        unknown = await client.post(
            f"/v1/threads/{thread}/runs", json={"graph": "nope", "input": {}}
        )
        assert unknown.status_code == 404
        both = await client.post(
            f"/v1/threads/{thread}/runs", json={"graph": "counter", "agent": "x", "input": {}}
        )
        assert both.status_code == 400
