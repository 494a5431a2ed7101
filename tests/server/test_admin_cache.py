"""The cache manager over every kind, through /admin/cache and through the CLI with no
server (storage alone): stats by kind, clear by kind and by tenant."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from roost.cli.main import app as cli
from tests.backup.helpers import kv_store, save_kv
from tests.server.conftest import AppFactory

ENV = {
    "ROOST_MEMORY__EMBEDDER": "hashing",
    "ROOST_MEMORY__CONSOLIDATION_INTERVAL_S": "0",
    "ROOST_LLM__CACHE__ENABLED": "true",
    "ROOST_LLM__CACHE__STORE": "database",
}


async def fill(app: Any, client: httpx.AsyncClient, home: Path) -> tuple[str, str]:
    """Entries of every kind for two tenants; returns their ids."""
    default = app.state.default_tenant_id
    acme = (await app.state.platform.tenants.create("acme")).id
    store = app.state.llm.cache.store
    for tenant in (default, acme):
        await store.put(f"key-{tenant}", "a cached reply", 3600, tenant_id=tenant)
        save_kv(home, tenant, "agent-1")
        kb = app.state.memory.knowledge
        await kb.create_collection(tenant, "docs")
        await kb.add_text(tenant, "docs", "doc://1", "Roost keeps every cache in one place.")
        await kb.search(tenant, "docs", "cache", mode="vector")  # loads the vector copy
    return default, acme


def by_kind(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in body["data"]}


async def test_stats_and_clear_every_kind_by_tenant(
    make_app: AppFactory, auth: dict[str, str], roost_home: Path
) -> None:
    async with make_app(env=ENV) as (app, client):
        client.headers.update(auth)
        default, _acme = await fill(app, client, roost_home)
        stats = by_kind((await client.get("/admin/cache")).json())
        assert set(stats) == {"kv", "prompt", "response", "embeddings", "vectors"}
        assert stats["kv"]["entries"] == 2 and stats["kv"]["where"] == "disk"
        assert stats["response"]["entries"] == 2 and stats["response"]["policy"] == "TTL 3600 s"
        assert stats["embeddings"]["entries"] >= 2  # the chunk and the query
        assert stats["vectors"]["entries"] == 2
        assert "not loaded" in stats["prompt"]["note"]  # engine disabled in this app

        only_acme = by_kind((await client.get("/admin/cache", params={"tenant": "acme"})).json())
        assert only_acme["kv"]["entries"] == only_acme["response"]["entries"] == 1

        cleared = by_kind((await client.post("/admin/cache/clear", json={"tenant": "acme"})).json())
        assert cleared["kv"]["entries"] == cleared["response"]["entries"] == 1
        assert cleared["vectors"]["entries"] == 1
        assert "not kept per tenant" in cleared["embeddings"]["note"]
        after = by_kind((await client.get("/admin/cache")).json())
        assert after["kv"]["entries"] == after["response"]["entries"] == 1  # the other tenant's
        assert after["embeddings"]["entries"] == stats["embeddings"]["entries"]

        gone = by_kind(
            (await client.post("/admin/cache/clear", json={"kind": "embeddings"})).json()
        )
        assert list(gone) == ["embeddings"] and gone["embeddings"]["entries"] >= 2
        # A cleared embedding cache only costs re-embedding: search still answers.
        hits = await app.state.memory.knowledge.search(default, "docs", "cache")
        assert hits and kv_store(roost_home).list()

        unknown = await client.get("/admin/cache", params={"kind": "nope"})
        assert unknown.status_code == 400 and "one of kv, prompt" in unknown.text


def test_cli_without_a_server_works_on_storage(
    make_app: AppFactory, roost_home: Path, monkeypatch: pytest.MonkeyPatch, without_roost_env: None
) -> None:
    async def serve_once() -> None:
        async with make_app(env=ENV) as (app, client):
            await fill(app, client, roost_home)

    asyncio.run(serve_once())
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.setenv("ROOST_SERVER__PORT", "9")  # nothing listens: storage alone
    runner = CliRunner()
    shown = runner.invoke(cli, ["cache", "stats", "--json"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert body["source"].startswith("no server answered")
    stats = by_kind(body)
    assert stats["kv"]["entries"] == 2 and stats["response"]["entries"] == 2
    assert "running server" in stats["vectors"]["note"]

    table = runner.invoke(cli, ["cache", "stats"])
    assert table.exit_code == 0 and "embeddings" in table.output

    refused = runner.invoke(cli, ["cache", "clear"])
    assert refused.exit_code == 2 and "--all" in refused.output
    cleared = runner.invoke(
        cli, ["cache", "clear", "--kind", "kv", "--tenant", "acme", "--offline"]
    )
    assert cleared.exit_code == 0 and "kv: cleared 1" in cleared.output, cleared.output
    everything = runner.invoke(cli, ["cache", "clear", "--all", "--offline"])
    assert everything.exit_code == 0, everything.output
    left = by_kind(json.loads(runner.invoke(cli, ["cache", "stats", "--json", "--offline"]).output))
    assert (
        left["kv"]["entries"] == left["response"]["entries"] == left["embeddings"]["entries"] == 0
    )
    audited = runner.invoke(cli, ["audit", "list", "--action", "cache.clear", "--json"])
    assert [e["target"] for e in json.loads(audited.output)["data"]] == ["all", "kv"]
