"""End to end: two providers and a fallback in roost.toml, the first one down; the
server's LLM service fails over, and usage shows up in /v1/usage and `roost usage`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from roost.cli.main import app as cli
from roost.config import load_settings
from roost.llm.base import RequestContext
from roost.llm.errors import BudgetExceeded
from roost.llm.messages import Message, ModelSettings, ResponseDone, TextDelta
from roost.llm.service import LLMService
from roost.server.app import create_app
from tests.llm.upstream import MockUpstream
from tests.support.servers import free_port

KEY = "test-bootstrap-key-0123456789abcdef"


def write_config(home: Path, upstream: MockUpstream) -> Path:
    dead = free_port()  # nothing listens here: the primary provider is down
    config = home / "roost.toml"
    config.write_text(
        f"""
[engine]
enabled = false

[llm.providers.primary]
kind = "openai"
base_url = "http://127.0.0.1:{dead}/v1"
api_key = "sk-primary-secret-000000"
timeout_s = 2

[llm.providers.backup]
kind = "anthropic"
base_url = "{upstream.url}"
api_key = "sk-backup-secret-000000"

[llm.groups.chat]
strategy = "priority"
deployments = ["primary:gpt-4.1-mini", "backup:claude-haiku-4-5"]

[llm.retry]
max_retries = 0

[[llm.budgets]]
limit_usd = 0.05
period = "day"
"""
    )
    return config


@pytest.fixture
async def served(
    roost_home: Path, upstream: MockUpstream
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Path]]:
    config = write_config(roost_home, upstream)
    settings = load_settings(config, env={"ROOST_HOME": str(roost_home), "ROOST_API_KEY": KEY})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://roost") as client:
            yield app, client, config


async def test_failover_then_usage_per_tenant(
    served: tuple[FastAPI, httpx.AsyncClient, Path], upstream: MockUpstream, roost_home: Path
) -> None:
    app, client, config = served
    service: LLMService = app.state.llm
    tenant = app.state.default_tenant_id
    context = RequestContext(tenant, key_id="k1", agent_id="agent-1")
    messages = [Message.user("hello over there")]
    response = await service.request(
        "chat", messages, ModelSettings(max_tokens=100), context=context
    )
    assert response.model == "backup:claude-haiku-4-5"
    assert response.text == "echo: hello over there"
    events = [
        e
        async for e in service.request_stream(
            "chat", messages, ModelSettings(max_tokens=100), context=context
        )
    ]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "echo: hello over there"
    assert isinstance(events[-1], ResponseDone)
    assert len(upstream.seen) == 2

    reply = await client.get("/v1/usage", headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 200
    body = reply.json()
    rows = {row["model"]: row for row in body["rows"]}
    assert rows["backup:claude-haiku-4-5"]["calls"] == 2
    assert rows["backup:claude-haiku-4-5"]["cost_usd"] > 0
    assert set(rows) == {"backup:claude-haiku-4-5"}  # one record per call, not per attempt
    metrics = (await client.get("/metrics")).text
    assert (
        'roost_llm_requests_total{model="gpt-4.1-mini",outcome="error",provider="primary"}'
        in metrics
    )
    assert body["total_cost_usd"] == pytest.approx(rows["backup:claude-haiku-4-5"]["cost_usd"])
    [budget] = body["budgets"]
    assert budget["reserved_usd"] == 0
    assert budget["spent_usd"] == pytest.approx(body["total_cost_usd"])
    by_agent = await client.get(
        "/v1/usage?group_by=agent", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert {r["agent"] for r in by_agent.json()["rows"]} == {"agent-1"}
    assert (await client.get("/v1/usage")).status_code == 401

    def roost(*args: str) -> Result:
        # The CLI runs its own event loop, so it gets a thread of its own.
        return CliRunner().invoke(
            cli, ["--config", str(config), *args], env={"ROOST_HOME": str(roost_home)}
        )

    result = await asyncio.to_thread(roost, "usage", "--json")
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    assert report["total_calls"] == 2
    assert report["total_cost_usd"] == pytest.approx(body["total_cost_usd"])
    table = await asyncio.to_thread(roost, "usage", "--by", "day")
    assert table.exit_code == 0, table.output
    assert "total" in table.output
    assert "budget tenant:" in table.output


async def test_exhausted_budget_is_a_clear_429(
    served: tuple[FastAPI, httpx.AsyncClient, Path],
) -> None:
    app, _, _ = served
    service: LLMService = app.state.llm
    context = RequestContext(app.state.default_tenant_id)
    huge = ModelSettings(max_tokens=100_000)  # $0.50 worst case at claude-haiku-4-5 prices
    with pytest.raises(BudgetExceeded) as caught:
        await service.request("chat", [Message.user("hi")], huge, context=context)
    assert caught.value.status == 429
    assert "budget of $0.05 this day" in caught.value.message
    assert caught.value.retry_after_s is not None
