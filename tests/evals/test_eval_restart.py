"""An evaluation outlives the server that started it: the next server continues it,
waiting on the item runs already queued and starting only the others (one run per
item, never two)."""

from __future__ import annotations

import json

from tests.evals.test_evals_api import ITEMS
from tests.server.conftest import AppFactory

PLUGIN = {"ROOST_PLUGINS": json.dumps(["tests.evals.plugin_for_tests"])}


async def test_an_unfinished_evaluation_continues_after_a_restart(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    # The first server only enqueues (runs.workers = 0): no item's run finishes there.
    async with make_app(env={**PLUGIN, "ROOST_RUNS__WORKERS": "0"}) as (app, client):
        client.headers.update(auth)
        spec = {"name": "doubler", "model": "function:agent"}
        assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        await client.post("/v1/datasets", json={"name": "doubles", "items": ITEMS[:3]})
        started = await client.post(
            "/v1/evals", json={"dataset": "doubles", "target": {"agent": "doubler"}}
        )
        eval_id = started.json()["id"]
        shown = (await client.get(f"/v1/evals/{eval_id}")).json()
        assert shown["status"] == "running" and shown["completed"] == 0
        queued_before = {r["run_id"] for r in shown["results"] if r["run_id"]}

    async with make_app(env=PLUGIN) as (app, client):
        client.headers.update(auth)
        done = await client.get(f"/v1/evals/{eval_id}", params={"wait_s": 60})
        runs = await app.state.platform.database.fetch_all(
            "SELECT id, status, workflow_id FROM agent_runs"
        )
        assert done.status_code == 200, (done.text, runs)
        result = done.json()
        assert result["status"] == "succeeded", json.dumps(result)
        assert [r["passed"] for r in result["results"]] == [True, True, False]
        run_ids = [r["run_id"] for r in result["results"]]
        assert queued_before <= set(run_ids)  # runs queued before the restart were reused
        count = await app.state.platform.database.fetch_one(
            "SELECT COUNT(*) AS n FROM agent_runs WHERE agent = 'doubler' AND status <> 'cancelled'"
        )
        # One run per item (a run left unqueued by the stopped server is cancelled).
        assert count is not None and count["n"] == 3
