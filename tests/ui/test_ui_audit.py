"""The audit page over HTTP, with real keys: an owner reads its own tenant's records, an
operator every tenant's; members, viewers and other tenants are refused; filters and
cursor pages; verifying the chain shows it adds up, or where a forged record breaks it;
targets written by callers are shown as text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx

from roost.security.principal import Role
from roost.storage import new_id, now_ms
from tests.ui.conftest import TARGET_XSS, UiServer, sign_in


@contextmanager
def _signed_in(ui: UiServer, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui.url) as client:
        sign_in(client, key)
        yield client


def _rows(html: str) -> int:
    return html.count('<tr class="event">')


def test_an_owner_reads_its_tenants_log_with_filters_and_pages(ui_server: UiServer) -> None:
    with ui_server.api() as api:  # three audited calls of this tenant
        for n in range(3):
            assert api.post("/v1/agents", json={"spec": {
                "name": f"audited-{n}", "model": "function:calc"}}).status_code == 201  # fmt: skip
    with ui_server.api(ui_server.other_key) as other:
        other.post("/v1/threads", json={})
    with _signed_in(ui_server, ui_server.key_for(Role.OWNER)) as client:
        page = client.get("/ui/audit", params={"action": "http:POST /v1/agents"})
        assert page.status_code == 200
        assert _rows(page.text) >= 3 and "http:POST /v1/agents" in page.text
        assert "/v1/threads" not in page.text  # filtered out
        assert 'name="tenant_id"' not in page.text  # an owner has no tenant filter
        everything = client.get("/ui/audit", params={"limit": 500}).text
        other_tenant = ui_server.run(_tenant_of(ui_server, ui_server.other_key))
        assert other_tenant not in everything
        # Cursor pages: two records a page, the next link continues where this one ended.
        first = client.get("/ui/audit", params={"action": "http:POST *", "limit": 2})
        assert _rows(first.text) == 2
        older = re.search(r'href="(/ui/audit\?[^"]+)" id="older"', first.text)
        assert older, "no link to older records"
        second = client.get(older.group(1).replace("&amp;", "&"))
        assert _rows(second.text) == 2
        first_ids = set(re.findall(r"<td>(\d+)</td>\n  </tr>", first.text))
        second_ids = set(re.findall(r"<td>(\d+)</td>\n  </tr>", second.text))
        assert first_ids and second_ids and not first_ids & second_ids
        assert client.get("/ui/audit", params={"cursor": "nonsense"}).status_code == 400
        assert client.get("/ui/audit", params={"since": "yesterday"}).status_code == 400
        # Dates (UTC): "until" today includes today's records; "since" tomorrow finds none.
        today = datetime.now(UTC).date()
        until_today = client.get("/ui/audit", params={"until": today.isoformat()})
        assert _rows(until_today.text) >= 3
        tomorrow = (today + timedelta(days=1)).isoformat()
        assert _rows(client.get("/ui/audit", params={"since": tomorrow}).text) == 0
        # Naming another tenant looks like naming no tenant at all.
        named = client.get("/ui/audit", params={"tenant_id": other_tenant})
        assert named.status_code == 404


async def _tenant_of(ui: UiServer, key: str) -> str:
    found = await ui.app.state.platform.api_keys.verify(key)
    return str(found.tenant_id)


def test_members_and_viewers_cannot_read_the_log(ui_server: UiServer) -> None:
    for role in (Role.MEMBER, Role.VIEWER):
        with _signed_in(ui_server, ui_server.key_for(role)) as client:
            assert 'href="/ui/audit"' not in client.get("/ui/runs").text
            assert client.get("/ui/audit").status_code == 403
            assert client.get("/ui/audit/verify").status_code == 403


def test_an_operator_reads_every_tenant_and_verifies_the_chain(ui_server: UiServer) -> None:
    other_tenant = ui_server.run(_tenant_of(ui_server, ui_server.other_key))
    with ui_server.api(ui_server.other_key) as other:
        other.post("/v1/threads", json={})
    operator_key = ui_server.key_for(Role.OWNER, operator=True)
    with _signed_in(ui_server, operator_key) as client:
        everyone = client.get("/ui/audit", params={"limit": 500})
        assert everyone.status_code == 200
        assert other_tenant in everyone.text and ui_server.tenant_id in everyone.text
        one = client.get("/ui/audit", params={"tenant_id": other_tenant, "limit": 500})
        assert _rows(one.text) >= 1 and ui_server.tenant_id not in one.text
        verified = client.get("/ui/audit/verify")
        assert verified.status_code == 200
        assert "The chain adds up" in verified.text and other_tenant in verified.text


def test_a_forged_record_shows_as_a_break(ui_server: UiServer) -> None:
    async def forge() -> str:
        platform = ui_server.app.state.platform
        tenant = await platform.tenants.create("forged-audit")
        await platform.audit.record(tenant.id, "key:someone", "agent.create", target="x")
        # Written behind the log's back: the next seq, but a hash that does not add up.
        await platform.database.execute(
            "INSERT INTO audit_events (id, tenant_id, at, actor, action, target, outcome,"
            " details, seq, request_id, principal_role, prev_hash, hash) VALUES (:i, :t, :at,"
            " 'key:someone', 'agent.delete', 'x', 'ok', '{}', 2, NULL, NULL, :z, :z)",
            {"i": new_id("aud"), "t": tenant.id, "at": now_ms(), "z": "0" * 64},
        )
        return str(tenant.id)

    tenant_id = ui_server.run(forge())
    operator_key = ui_server.key_for(Role.OWNER, operator=True)
    with _signed_in(ui_server, operator_key) as client:
        page = client.get("/ui/audit")
        link = re.search(r'href="(/ui/audit/verify[^"]*)" id="verify-chain"', page.text)
        assert link
        broken = client.get("/ui/audit/verify", params={"tenant_id": tenant_id})
    assert broken.status_code == 200
    assert "The chain is broken" in broken.text
    assert "seq 2" in broken.text and "prev_hash does not match" in broken.text


def test_targets_written_by_callers_stay_text(ui_server: UiServer) -> None:
    with ui_server.api() as api:
        refused = api.post(f"/v1/prompts/{quote(TARGET_XSS, safe='')}/labels",
                           json={"label": "production", "version": 1})  # fmt: skip
        assert refused.status_code in (400, 404, 422)
    with _signed_in(ui_server, ui_server.key_for(Role.OWNER)) as client:
        page = client.get("/ui/audit", params={"action": "http:POST /v1/prompts/{name}/labels"})
    assert "name=&lt;img src=x onerror=&#34;window.__pwned = 3&#34;&gt;" in page.text
    assert TARGET_XSS not in page.text
