"""``/v1/memory`` and ``/v1/knowledge/collections`` through the real app, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from roost.config import load_settings
from roost.server.app import create_app

KEY = "memory-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def app_client(roost_home: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = load_settings(
        env={
            "ROOST_HOME": str(roost_home),
            "ROOST_API_KEY": KEY,
            "ROOST_ENGINE__ENABLED": "false",
            "ROOST_MEMORY__EMBEDDER": "hashing",
            "ROOST_MEMORY__CONSOLIDATION_INTERVAL_S": "0",
            "ROOST_MEMORY__SHORT_TERM_MAX_TOKENS": "64",
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://roost", headers=AUTH
        ) as client:
            yield app, client


async def test_memories_add_search_supersede_delete(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = app_client
    r = await client.post(
        "/v1/memory/agents/helper/memories",
        json={"text": "The user's cat is named Miso", "importance": 0.9},
    )
    assert r.status_code == 201, r.text
    first = r.json()
    await client.post(
        "/v1/memory/agents/helper/memories", json={"text": "The user works night shifts"}
    )
    found = (
        await client.post("/v1/memory/agents/helper/search", json={"query": "cat named", "k": 1})
    ).json()["data"]
    assert [m["id"] for m in found] == [first["id"]] and found[0]["score"] > 0
    r = await client.post(
        f"/v1/memory/agents/helper/memories/{first['id']}/supersede",
        json={"text": "The user's cat is named Mochi"},
    )
    assert r.status_code == 201
    current = (await client.get("/v1/memory/agents/helper/memories")).json()["data"]
    assert sorted(m["text"] for m in current) == [
        "The user works night shifts",
        "The user's cat is named Mochi",
    ]
    old = (await client.get(f"/v1/memory/agents/helper/memories/{first['id']}")).json()
    assert old["superseded_by"] == r.json()["id"]
    assert (
        await client.delete(f"/v1/memory/agents/helper/memories/{first['id']}")
    ).status_code == 204
    missing = await client.delete(f"/v1/memory/agents/helper/memories/{first['id']}")
    assert missing.status_code == 404
    bad = await client.post(
        "/v1/memory/agents/helper/memories", json={"text": "x", "importance": 3}
    )
    assert bad.status_code == 400
    assert (
        await client.get(
            "/v1/memory/agents/helper/memories", headers={"Authorization": "Bearer nope"}
        )
    ).status_code == 401


async def test_thread_window_and_consolidation(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = app_client
    await client.post(
        "/v1/memory/threads/th1/messages", json={"role": "system", "content": "Be brief."}
    )
    for i in range(12):
        content = (
            "My locker code is 4417." if i == 0 else f"filler message number {i} about nothing much"
        )
        r = await client.post(
            "/v1/memory/threads/th1/messages",
            json={"role": "user", "content": content, "agent_id": "helper"},
        )
        assert r.status_code == 201
    window = (await client.get("/v1/memory/threads/th1/messages")).json()
    assert window["total_tokens"] <= window["max_tokens"] == 64
    assert window["data"][0]["role"] == "system" and window["data"][0]["pinned"]
    # Over budget, adding turns consolidated the oldest ones into the agent's memory.
    found = (
        await client.post("/v1/memory/agents/helper/search", json={"query": "locker code"})
    ).json()["data"]
    assert any("4417" in m["text"] for m in found)
    forced = (
        await client.post(
            "/v1/memory/threads/th1/consolidate", json={"agent_id": "helper", "force": True}
        )
    ).json()
    assert forced["data"] and forced["data"][0]["num_turns"] >= 1
    assert (await client.delete("/v1/memory/threads/th1")).status_code == 204
    assert (await client.get("/v1/memory/threads/th1/messages")).json()["data"] == []


async def test_knowledge_collections_over_http(
    app_client: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path
) -> None:
    app, client = app_client
    r = await client.post(
        "/v1/knowledge/collections", json={"name": "faq", "description": "answers"}
    )
    assert r.status_code == 201
    assert (await client.post("/v1/knowledge/collections", json={"name": "faq"})).status_code == 409
    r = await client.post("/v1/knowledge/collections/faq/documents",
                          json={"uri": "faq://refunds", "text": "Refunds take five business days.", "title": "Refunds"})  # fmt: skip
    assert r.json() == {"uri": "faq://refunds", "status": "added"}
    hits = (
        await client.post(
            "/v1/knowledge/collections/faq/search", json={"query": "how long do refunds take"}
        )
    ).json()["data"]
    assert hits[0]["uri"] == "faq://refunds" and hits[0]["citation"] == "faq://refunds (lines 1-1)"
    # A folder added from the machine (as `roost kb add` does) re-syncs over HTTP.
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "a.md").write_text("# Shipping\n\nWe ship worldwide.\n")
    await app.state.memory.knowledge.add_path(app.state.default_tenant_id, "faq", folder)
    (folder / "a.md").write_text("# Shipping\n\nWe ship to Europe only.\n")
    report = (await client.post("/v1/knowledge/collections/faq/sync")).json()
    assert report["updated"] == [str(folder / "a.md")] and report["failed"] == []
    sources = (await client.get("/v1/knowledge/collections/faq/sources")).json()["data"]
    assert {s["uri"] for s in sources} == {"faq://refunds", str(folder / "a.md")}
    r = await client.request(
        "DELETE", "/v1/knowledge/collections/faq/sources", params={"uri": "faq://refunds"}
    )
    assert r.status_code == 204
    assert (await client.get("/v1/knowledge/collections/nope")).status_code == 404
    assert (await client.delete("/v1/knowledge/collections/faq")).status_code == 204
    assert (await client.get("/v1/knowledge/collections")).json()["data"] == []


async def test_memory_tools_for_agents(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, _ = app_client
    memory = app.state.memory
    tenant = app.state.default_tenant_id
    stored = await memory.call_tool(
        tenant, "helper", "remember", {"text": "Deploys happen on Tuesdays", "importance": 0.7}
    )
    recalled = await memory.call_tool(tenant, "helper", "recall", {"query": "when are deploys"})
    assert recalled[0]["id"] == stored["id"]
    await memory.knowledge.create_collection(tenant, "ops")
    await memory.knowledge.add_text(tenant, "ops", "runbook://deploy", "Deploy with make release.")
    hits = await memory.call_tool(
        tenant, "helper", "search_knowledge", {"collection": "ops", "query": "deploy release"}
    )
    assert hits[0]["citation"].startswith("runbook://deploy")
    with pytest.raises(KeyError):
        await memory.call_tool(tenant, "helper", "dream", {})
