"""/metrics: process and system collectors, and business metrics read from the database
after a real agent run (priced through the trace store) and a pending approval."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from roost.llm.testing import FunctionModel
from roost.observe import business_metrics
from roost.observe.process_metrics import ProcessCollector
from tests.agents.conftest import ToolLog, make_test_tools
from tests.agents.test_api import answer_with_tools, new_thread
from tests.server.conftest import AppFactory


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_process_collector_reads_the_process_and_the_home(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "blob").write_bytes(b"x" * 10_000)
    collector = ProcessCollector(tmp_path, du_ttl_s=3600)
    metrics = {m.name: m.samples[0].value for m in collector.collect()}
    assert metrics["roost_home_used_bytes"] == 10_000
    assert metrics["roost_process_resident_memory_bytes"] > 10_000_000
    assert metrics["roost_process_open_fds"] > 0
    assert metrics["roost_process_cpu_seconds"] > 0
    (tmp_path / "more").write_bytes(b"y" * 5_000)
    # cached: the walk is not repeated on every scrape
    assert {m.name: m.samples[0].value for m in collector.collect()}[
        "roost_home_used_bytes"
    ] == 10_000


async def test_business_metrics_after_an_agent_run(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    prices = json.dumps({"function:agent": {"input": 1000.0, "output": 1000.0}})
    env = {"ROOST_LLM__PRICES": prices}
    async with make_app(env) as (app, client):
        client.headers.update(auth)
        app.state.llm.router.registry.register(FunctionModel(answer_with_tools, "function:agent"))
        app.state.tools.registry.add_for_tenant(
            app.state.default_tenant_id, make_test_tools(ToolLog())
        )
        spec = {"name": "calc", "model": "function:agent", "tools": ["add"]}
        assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        thread = await new_thread(client)
        run = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "2+40?", "mode": "wait"}
        )
        assert run.json()["status"] == "succeeded"
        trace = (await client.get("/v1/traces", params={"run_id": run.json()["id"]})).json()
        (summary,) = trace["data"]
        await app.state.tools.approvals.request(
            app.state.default_tenant_id, "drop_table", {"table": "t"},
            risk="destructive", requested_by="test",
        )  # fmt: skip
        await business_metrics.refresh(app.state.platform.database)
        scraped = samples((await client.get("/metrics")).text)

    assert scraped[("roost_runs_24h", (("agent", "calc"), ("status", "succeeded")))] == 1
    cost = scraped[("roost_run_cost_per_success_usd", (("agent", "calc"),))]
    assert summary["cost_usd"] > 0 and abs(cost - summary["cost_usd"]) < 1e-9
    assert scraped[("roost_approvals_pending", ())] == 1
    assert scraped[("roost_process_resident_memory_bytes", ())] > 0
