"""/admin/caches over HTTP: listing, offload, warm, delete, and who may call them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from roost.engine import Engine, EngineConfig
from roost.kvcache import open_session_store
from tests.server.conftest import AppFactory

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cached_engine(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = Engine(
        EngineConfig(
            home=model_home,
            dtype="float32",
            kv_cache_gb=0.1,
            session_dir=tmp_path_factory.mktemp("kv"),
        ),
        session_store=open_session_store,
    )
    yield engine
    engine.close()


async def chat(client: httpx.AsyncClient, auth: dict[str, str], session: str, text: str) -> int:
    response = await client.post(
        "/v1/chat/completions",
        headers={**auth, "X-Roost-Session": session},
        json={
            "model": "smollm2-135m-instruct",
            "messages": [{"role": "user", "content": text}],
            "max_tokens": 4,
            "temperature": 0,
        },
    )
    assert response.status_code == 200, response.text
    cached: int = response.json()["usage"]["prompt_tokens_details"]["cached_tokens"]
    return cached


async def test_admin_lists_offloads_warms_and_deletes_session_caches(
    make_app: AppFactory, auth: dict[str, str], cached_engine: Engine
) -> None:
    def attach(app: FastAPI) -> None:
        app.state.engine = cached_engine

    async with make_app(customize=attach) as (app, client):
        tenant = app.state.default_tenant_id
        question = "Tell me about lighthouses and the people who kept them, in detail. " * 4
        await chat(client, auth, "s-admin-1", question)
        listing = (await client.get("/admin/caches", headers=auth)).json()
        rows = [r for r in listing["data"] if r["session_id"] == "s-admin-1"]
        assert [(r["tenant_id"], r["tier"]) for r in rows] == [(tenant, "hot")]
        assert rows[0]["num_tokens"] >= 64 and rows[0]["nbytes"] > 0
        assert "s-admin-1" not in rows[0]["id"]

        offloaded = (await client.post("/admin/caches/offload", headers=auth)).json()
        assert {r["tier"] for r in offloaded["data"]} == {"cold"}
        assert offloaded["totals"]["hot"]["bytes"] == 0
        assert offloaded["totals"]["cold"]["bytes"] > 0

        cache_id = rows[0]["id"]
        warmed = (await client.post(f"/admin/caches/{cache_id}/warm", headers=auth)).json()
        assert warmed["tier"] == "warm"
        # The next turn of the session is served from the restored cache.
        assert await chat(client, auth, "s-admin-1", question) >= 64

        deleted = await client.delete(f"/admin/caches/{cache_id}", headers=auth)
        assert deleted.status_code == 204
        missing = await client.delete(f"/admin/caches/{cache_id}", headers=auth)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


async def test_admin_caches_refuse_keys_of_other_tenants(
    make_app: AppFactory, cached_engine: Engine
) -> None:
    def attach(app: FastAPI) -> None:
        app.state.engine = cached_engine

    async with make_app(customize=attach) as (app, client):
        platform = app.state.platform
        other = await platform.tenants.create("not-the-operator")
        _, plaintext = await platform.api_keys.create(other.id, "ordinary")
        response = await client.get(
            "/admin/caches", headers={"Authorization": f"Bearer {plaintext}"}
        )
        assert response.status_code == 403
        assert response.json()["status"] == 403
