"""``GET /v1/audit`` and the audit of state-changing HTTP calls, through the real app."""

from __future__ import annotations

import pytest

from roost.config import Settings
from roost.errors import Forbidden, NotFound
from roost.security.audit_verify import verify_audit
from roost.security.principal import Principal, Role
from roost.server.app import create_app
from roost.server.audit import audit_scope
from roost.server.audit_http import QUERY_ROUTES
from tests.server.conftest import AppFactory


async def test_state_changing_calls_are_audited_with_request_id_and_role(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        created = await client.post("/v1/threads", json={}, headers={**auth,
                                    "x-request-id": "h-audit-req-1"})  # fmt: skip
        assert created.status_code == 201
        thread_id = created.json()["id"]
        missing = await client.post("/v1/runs/run_h_audit_nope/cancel", headers=auth)
        assert missing.status_code == 404
        await client.get(f"/v1/threads/{thread_id}", headers=auth)  # reads are not audited

        listed = await client.get("/v1/audit", params={"action": "http:*"}, headers=auth)
        assert listed.status_code == 200
        events = listed.json()["data"]
        assert [(e["action"], e["outcome"]) for e in events] == [
            ("http:POST /v1/runs/{run_id}/cancel", "rejected"),
            ("http:POST /v1/threads", "ok"),
        ]
        first = events[-1]
        assert first["request_id"] == "h-audit-req-1"
        assert first["principal_role"] == "owner" and first["actor"].startswith("key:")
        assert events[0]["target"] == "run_id=run_h_audit_nope"
        assert events[0]["details"]["status"] == 404
        assert (await verify_audit(app.state.platform.database)).ok


async def test_pages_follow_the_cursor_and_a_bad_cursor_is_a_problem(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (_, client):
        for _ in range(5):
            assert (await client.post("/v1/threads", json={}, headers=auth)).status_code == 201
        seen: list[str] = []
        params: dict[str, str | int] = {"action": "http:POST /v1/threads", "limit": 2}
        while True:
            page = (await client.get("/v1/audit", params=params, headers=auth)).json()
            seen += [e["id"] for e in page["data"]]
            if not page["has_more"]:
                break
            params["cursor"] = page["next_cursor"]
        assert len(seen) == len(set(seen)) == 5
        bad = await client.get("/v1/audit", params={"cursor": "%%%"}, headers=auth)
        assert bad.status_code == 400
        assert bad.headers["content-type"].startswith("application/problem+json")


async def test_a_tenant_reads_only_its_own_records(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        platform = app.state.platform
        other = await platform.tenants.create("h-audit-other")
        _, other_key = await platform.api_keys.create(other.id, "other")
        other_auth = {"Authorization": f"Bearer {other_key}"}
        assert (await client.post("/v1/threads", json={}, headers=auth)).status_code == 201
        assert (await client.post("/v1/threads", json={}, headers=other_auth)).status_code == 201

        mine = (await client.get("/v1/audit", headers=other_auth)).json()["data"]
        assert mine and {e["tenant_id"] for e in mine} == {other.id}
        default_id = app.state.default_tenant_id
        peek = await client.get("/v1/audit", params={"tenant_id": default_id}, headers=other_auth)
        assert peek.status_code == 404
        assert peek.headers["content-type"].startswith("application/problem+json")


async def test_a_call_that_cannot_be_audited_is_not_confirmed(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    """The audit append fails (its table is gone): the client gets 503, not 201."""
    async with make_app() as (app, client):
        await app.state.platform.database.execute("DROP TABLE audit_heads")
        answer = await client.post("/v1/threads", json={}, headers=auth)
        assert answer.status_code == 503
        assert "audit" in answer.json()["detail"]


def test_who_may_read_which_tenant() -> None:
    owner = Principal("ten_a", "k1", Role.OWNER)
    assert audit_scope(owner, None) == "ten_a"
    assert audit_scope(owner, "ten_a") == "ten_a"
    with pytest.raises(NotFound):
        audit_scope(owner, "ten_b")
    for role in (Role.MEMBER, Role.VIEWER):
        with pytest.raises(Forbidden):
            audit_scope(Principal("ten_a", "k2", role), None)
    operator = Principal("ten_a", "k3", Role.MEMBER, operator=True)
    assert audit_scope(operator, None) is None
    assert audit_scope(operator, "ten_b") == "ten_b"


def test_every_route_left_out_of_the_http_audit_exists(settings: Settings) -> None:
    """A renamed query route would otherwise sit in the exclusion list, matching nothing."""
    app = create_app(settings)
    paths = app.openapi()["paths"]
    routes = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    assert routes >= QUERY_ROUTES - {("POST", "/mcp"), ("DELETE", "/mcp")}  # not in OpenAPI
