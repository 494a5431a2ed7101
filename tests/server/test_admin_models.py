"""/admin/models in process (no model loaded): the listing, and who may use it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server.conftest import AppFactory
from tests.support.tiny_model import write_tiny_llama


async def test_lists_named_models_for_the_operator(
    make_app: AppFactory, auth: dict[str, str], tmp_path: Path
) -> None:
    tiny = write_tiny_llama(tmp_path / "tiny")
    env = {"ROOST_ENGINE__MODELS__TINY": str(tiny), "ROOST_ENGINE__MODELS__REMOTE": "org/x"}
    async with make_app(env) as (_, client):
        response = await client.get("/admin/models", headers=auth)
    assert response.status_code == 200
    body = response.json()
    rows = {row["name"]: row for row in body["data"]}
    assert list(rows) == ["smollm2-135m-instruct", "tiny", "remote"]
    assert rows["tiny"] | {"size_bytes": 0} == {
        "name": "tiny",
        "source": str(tiny),
        "kind": "hf-dir",
        "path": str(tiny),
        "is_available": True,
        "size_bytes": 0,
        "note": "ready",
        "is_default": False,
        "is_loaded": False,
    }
    assert rows["tiny"]["size_bytes"] > 0
    assert (rows["remote"]["kind"], rows["remote"]["is_available"]) == ("hf-repo", False)
    assert rows["smollm2-135m-instruct"]["is_default"]
    assert (body["loaded"], body["swap"]) == (None, None)


async def test_swapping_needs_a_local_engine(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (_, client):
        response = await client.post("/admin/models/swap", headers=auth, json={"model": "x"})
    assert response.status_code == 409
    assert "engine is disabled" in response.json()["detail"]


async def test_keys_of_other_tenants_get_403(make_app: AppFactory) -> None:
    async with make_app() as (app, client):
        platform = app.state.platform
        other = await platform.tenants.create("not-the-operator")
        _, plaintext = await platform.api_keys.create(other.id, "ordinary")
        headers = {"Authorization": f"Bearer {plaintext}"}
        listing = await client.get("/admin/models", headers=headers)
        swap = await client.post("/admin/models/swap", headers=headers, json={"model": "x"})
    for response in (listing, swap):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


async def test_swap_body_is_validated(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (_, client):
        response: httpx.Response = await client.post(
            "/admin/models/swap", headers=auth, json={"model": "x", "drain_timeout_s": -1}
        )
    assert response.status_code == 400
    assert response.json()["param"] == "drain_timeout_s"
