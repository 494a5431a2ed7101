"""/metrics reports the deployment's queue depth (what the worker autoscaler scales on)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.backup.helpers import counter_graph
from tests.server.conftest import AppFactory


def queued(metrics: str) -> float:
    match = re.search(r"^roost_runs_queued (\S+)$", metrics, re.MULTILINE)
    assert match is not None, metrics
    return float(match.group(1))


async def test_runs_waiting_for_a_worker_are_counted(
    make_app: AppFactory, auth: dict[str, str], roost_home: Path
) -> None:
    # workers = 0: this server only enqueues, so the runs stay queued.
    async with make_app(env={"ROOST_RUNS__WORKERS": "0"}) as (app, client):
        client.headers.update(auth)
        assert queued((await client.get("/metrics")).text) == 0
        tenant = app.state.default_tenant_id
        app.state.agents.graphs["counter"] = counter_graph(app.state.platform.settings, tenant)
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        for _ in range(3):
            run = await client.post(
                f"/v1/threads/{thread}/runs",
                json={"graph": "counter", "input": {"count": 1}, "mode": "background"},
            )
            assert run.status_code in (200, 201, 202), run.text
        assert queued((await client.get("/metrics")).text) == 3
