"""The admin API: tenants and their keys, with roles, over HTTP in process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from roost.security.schema import CORE_MIGRATIONS
from roost.storage import Database, migrate, now_ms
from tests.server.conftest import AppFactory


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _tenant_with_owner(
    client: httpx.AsyncClient, auth: dict[str, str], name: str
) -> tuple[str, str]:
    tenant = (await client.post("/admin/tenants", json={"name": name}, headers=auth)).json()
    made = await client.post(
        f"/admin/tenants/{tenant['id']}/keys", json={"role": "owner"}, headers=auth
    )
    assert made.status_code == 201, made.text
    return tenant["id"], made.json()["key"]


async def test_owner_manages_its_tenants_keys_and_nothing_else(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (_, client):
        acme, owner = await _tenant_with_owner(client, auth, "acme")
        globex, _ = await _tenant_with_owner(client, auth, "globex")
        keys_url = f"/admin/tenants/{acme}/keys"
        made = await client.post(
            keys_url, json={"name": "bot", "role": "member"}, headers=bearer(owner)
        )
        assert made.status_code == 201
        member = made.json()
        assert member["role"] == "member" and member["operator"] is False
        assert member["key"].startswith("roost-")
        # The member uses the tenant but cannot manage it.
        assert (await client.get("/v1/agents", headers=bearer(member["key"]))).status_code == 200
        refused = await client.get(keys_url, headers=bearer(member["key"]))
        assert refused.status_code == 403 and refused.json()["required"] == "owner"
        # Listing never shows secrets.
        listed = (await client.get(keys_url, headers=bearer(owner))).json()["data"]
        assert {k["id"] for k in listed} >= {member["id"]}
        assert all("key" not in k for k in listed)
        # Another tenant's keys: hidden, not forbidden.
        hidden = await client.get(f"/admin/tenants/{globex}/keys", headers=bearer(owner))
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"
        # Role change, then rotate: the old secret stops working, the new one works.
        changed = await client.patch(
            f"{keys_url}/{member['id']}", json={"role": "viewer"}, headers=bearer(owner)
        )
        assert changed.json()["role"] == "viewer"
        as_viewer = await client.post("/v1/threads", json={}, headers=bearer(member["key"]))
        assert as_viewer.status_code == 403
        rotated = (
            await client.post(f"{keys_url}/{member['id']}/rotate", headers=bearer(owner))
        ).json()
        assert rotated["id"] == member["id"] and rotated["key"] != member["key"]
        assert (await client.get("/v1/agents", headers=bearer(member["key"]))).status_code == 401
        assert (await client.get("/v1/agents", headers=bearer(rotated["key"]))).status_code == 200
        # Revoke.
        gone = await client.delete(f"{keys_url}/{member['id']}", headers=bearer(owner))
        assert gone.status_code == 204
        assert (await client.get("/v1/agents", headers=bearer(rotated["key"]))).status_code == 401
        # Platform things stay the operator's.
        assert (await client.get("/admin/tenants", headers=bearer(owner))).status_code == 403
        assert (await client.get("/admin/models", headers=bearer(owner))).status_code == 403


async def test_unknown_role_is_400_naming_the_roles(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        tenant = app.state.default_tenant_id
        response = await client.post(
            f"/admin/tenants/{tenant}/keys", json={"role": "admin"}, headers=auth
        )
        assert response.status_code == 400
        problem = response.json()
        assert problem["type"] == "urn:roost:problem:invalid_request"
        assert "owner, member, viewer" in problem["detail"]
        assert problem["allowed"] == ["owner", "member", "viewer"]
        missing = await client.post(f"/admin/tenants/{tenant}/keys", json={}, headers=auth)
        assert missing.status_code == 400 and missing.json()["param"] == "role"


async def test_only_an_operator_makes_or_touches_operator_keys(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        default = app.state.default_tenant_id
        keys_url = f"/admin/tenants/{default}/keys"
        owner = (await client.post(keys_url, json={"role": "owner"}, headers=auth)).json()
        assert owner["operator"] is False
        # An owner of the default tenant is not the operator.
        assert (await client.get("/admin/models", headers=bearer(owner["key"]))).status_code == 403
        escalate = await client.post(
            keys_url, json={"role": "owner", "operator": True}, headers=bearer(owner["key"])
        )
        assert escalate.status_code == 403
        me = (await client.get("/admin/whoami", headers=auth)).json()
        for attempt in (
            client.delete(f"{keys_url}/{me['key_id']}", headers=bearer(owner["key"])),
            client.post(f"{keys_url}/{me['key_id']}/rotate", headers=bearer(owner["key"])),
            client.patch(f"{keys_url}/{me['key_id']}", json={"role": "viewer"},
                         headers=bearer(owner["key"])),
        ):  # fmt: skip
            assert (await attempt).status_code == 403
        second = await client.post(
            keys_url, json={"role": "viewer", "operator": True}, headers=auth
        )
        operator_viewer = second.json()
        assert operator_viewer["operator"] is True
        assert (
            await client.get("/admin/models", headers=bearer(operator_viewer["key"]))
        ).status_code == 200


async def test_disabled_tenant_keys_are_refused_until_enabled(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        acme, owner = await _tenant_with_owner(client, auth, "acme")
        assert (await client.get("/v1/agents", headers=bearer(owner))).status_code == 200
        disabled = await client.post(f"/admin/tenants/{acme}/disable", headers=auth)
        assert disabled.json()["disabled_at"] is not None
        refused = await client.get("/v1/agents", headers=bearer(owner))
        assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
        await client.post(f"/admin/tenants/{acme}/enable", headers=auth)
        assert (await client.get("/v1/agents", headers=bearer(owner))).status_code == 200
        default = app.state.default_tenant_id
        kept = await client.post(f"/admin/tenants/{default}/disable", headers=auth)
        assert kept.status_code == 409
        events = await app.state.platform.audit.list(acme)
        assert {"tenant.create", "tenant.disable", "tenant.enable", "api_key.create"} <= {
            e.action for e in events
        }
        owner_view = await client.get(f"/admin/tenants/{acme}", headers=bearer(owner))
        assert owner_view.json()["name"] == "acme"
        budgets = await client.get(f"/admin/tenants/{acme}/budgets", headers=bearer(owner))
        assert budgets.status_code == 200 and budgets.json()["data"] == []


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_keys_made_before_roles_keep_their_powers(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Migration: default-tenant keys stay operators (they were admins); all become owners."""
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    database = await Database.connect(url)
    try:
        await migrate(database, CORE_MIGRATIONS[:1])
        for tenant, name in (("t-default", "default"), ("t-acme", "acme")):
            await database.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (:id, :n, :at)",
                {"id": tenant, "n": name, "at": now_ms()},
            )
            await database.execute(
                "INSERT INTO api_keys (id, tenant_id, name, salt, secret_hash, created_at)"
                " VALUES (:id, :t, 'old', '00', 'x', :at)",
                {"id": "k-" + name, "t": tenant, "at": now_ms()},
            )
        await migrate(database, CORE_MIGRATIONS)
        rows = {r["id"]: (r["role"], bool(r["operator"])) for r in
                await database.fetch_all("SELECT id, role, operator FROM api_keys")}  # fmt: skip
        assert rows == {"k-default": ("owner", True), "k-acme": ("owner", False)}
    finally:
        await database.close()
