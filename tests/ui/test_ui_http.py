"""The web UI's rules checked over HTTP (no browser): sessions, CSRF, roles, tenants,
escaping, and the API docs served offline."""

from __future__ import annotations

import time

import httpx

from roost.security.principal import Role
from tests.ui.conftest import BOOTSTRAP_KEY, XSS, UiServer, csrf_of, sign_in


def _run(ui: UiServer, agent: str, text: str) -> dict[str, object]:
    with ui.api() as api:
        thread = api.post("/v1/threads", json={}).json()["id"]
        run = api.post(
            f"/v1/threads/{thread}/runs", json={"agent": agent, "input": text, "mode": "wait"}
        )
        assert run.status_code == 200, run.text
        return dict(run.json())


def test_pages_need_a_session_and_the_cookie_is_locked_down(ui_server: UiServer) -> None:
    with httpx.Client(base_url=ui_server.url) as client:
        first = client.get("/ui/approvals?status=pending")
        assert first.status_code == 303
        assert first.headers["location"] == "/ui/login?next=/ui/approvals%3Fstatus%3Dpending"
        form = client.get("/ui/login")
        wrong = client.post(
            "/ui/login", data={"csrf": csrf_of(form.text), "api_key": "roost-nope-nope"}
        )
        assert wrong.status_code == 401 and "invalid API key" in wrong.text
        form = client.get("/ui/login")
        done = client.post(
            "/ui/login",
            data={"csrf": csrf_of(form.text), "api_key": BOOTSTRAP_KEY, "next": "//evil.test/"},
        )
        assert done.status_code == 303 and done.headers["location"] == "/ui/runs"
        cookie = next(h for h in done.headers.get_list("set-cookie") if h.startswith("roost_ui="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert "Secure" not in cookie  # plain HTTP here; over TLS the flag is set
        page = client.get("/ui/runs")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_forms_without_the_csrf_token_get_403(ui_server: UiServer) -> None:
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client)
        no_token = client.post("/ui/agents/calc/runs", data={"input": "hi"})
        assert no_token.status_code == 403 and "CSRF" in no_token.text
        forged = client.post("/ui/agents/calc/runs", data={"input": "hi", "csrf": "x" * 43})
        assert forged.status_code == 403
        login_forged = client.post("/ui/login", data={"api_key": BOOTSTRAP_KEY})
        assert login_forged.status_code == 403
        token = csrf_of(client.get("/ui/agents/calc").text)
        started = client.post("/ui/agents/calc/runs", data={"input": "hi", "csrf": token})
        assert started.status_code == 303 and started.headers["location"].startswith("/ui/runs/")


def test_an_expired_session_or_a_revoked_key_sends_back_to_sign_in(ui_server: UiServer) -> None:
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client)
        assert client.get("/ui/runs").status_code == 200
        ui_server.run(ui_server.app.state.web_sessions.expire_now(client.cookies["roost_ui"]))
        gone = client.get("/ui/runs")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/login")
        hx = client.get("/ui/runs", headers={"hx-request": "true"})
        assert hx.headers["hx-redirect"].startswith("/ui/login")

    async def new_key() -> str:
        _, key = await ui_server.app.state.platform.api_keys.create(ui_server.tenant_id, "temp")
        return str(key)

    key = ui_server.run(new_key())
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client, key)
        assert client.get("/ui/runs").status_code == 200
        key_id = key.split("-")[1]
        ui_server.run(ui_server.app.state.platform.api_keys.revoke(key_id))
        assert client.get("/ui/runs").status_code == 303


def test_another_tenants_objects_are_not_found(ui_server: UiServer) -> None:
    run = _run(ui_server, "calc", "tenant check")
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client, ui_server.other_key)
        for path in (
            f"/ui/runs/{run['id']}",
            f"/ui/runs/{run['id']}/timeline",
            f"/ui/threads/{run['thread_id']}",
            "/ui/agents/calc",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "text/html" in answer.headers["content-type"]
        listed = client.get("/ui/runs")
        assert str(run["id"]) not in listed.text
        token = csrf_of(listed.text)
        cancel = client.post(f"/ui/runs/{run['id']}/cancel", data={"csrf": token})
        assert cancel.status_code == 404
        # The platform pages are the operator's; another tenant's owner is not one.
        assert client.get("/ui/caches").status_code == 403


def test_a_viewer_sees_but_cannot_act(ui_server: UiServer) -> None:
    with ui_server.api() as api:
        thread = api.post("/v1/threads", json={}).json()["id"]
        run = api.post(
            f"/v1/threads/{thread}/runs", json={"agent": "dropper", "input": "x", "mode": "wait"}
        ).json()
    assert run["status"] == "interrupted"
    approval_id = run["interrupts"][0]["value"]["approvals"][0]["approval_id"]
    with httpx.Client(base_url=ui_server.url) as client:
        client.cookies.set("roost_ui", ui_server.session_for(Role.VIEWER), path="/ui")
        inbox = client.get("/ui/approvals")
        assert inbox.status_code == 200 and approval_id in inbox.text
        assert f'action="/ui/approvals/{approval_id}"' not in inbox.text
        assert "can see approvals but not decide them" in inbox.text
        token = csrf_of(inbox.text)  # the sign-out form's
        refused = client.post(
            f"/ui/approvals/{approval_id}", data={"csrf": token, "decision": "approve"}
        )
        assert refused.status_code == 403
        assert client.post(f"/ui/runs/{run['id']}/cancel", data={"csrf": token}).status_code == 403
    with ui_server.api() as api:
        assert api.get(f"/v1/approvals/{approval_id}").json()["status"] == "pending"
        api.post(f"/v1/runs/{run['id']}/cancel")


def test_user_content_renders_as_text_everywhere(ui_server: UiServer) -> None:
    run = _run(ui_server, "calc", XSS)
    with ui_server.api() as api:
        made = api.post("/v1/memory/agents/calc/memories", json={"text": f"remember {XSS}"})
        assert made.status_code == 201
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client)
        for path in (f"/ui/runs/{run['id']}", "/ui/agents", "/ui/agents/calc",
                     "/ui/memory?agent=calc", f"/ui/threads/{run['thread_id']}"):  # fmt: skip
            html = client.get(path).text
            assert "<script>window.__pwned" not in html, path
            assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html, path


def test_docs_work_offline(ui_server: UiServer) -> None:
    with httpx.Client(base_url=ui_server.url) as client:
        docs = client.get("/docs").text
        assert "/docs/assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        js = client.get("/docs/assets/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200


def test_run_list_filters_and_pages(ui_server: UiServer) -> None:
    first = _run(ui_server, "calc", "one")
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client)
        only_calc = client.get("/ui/runs?agent=calc&status=succeeded").text
        assert str(first["id"]) in only_calc
        assert str(first["id"]) not in client.get("/ui/runs?status=failed").text
        assert client.get("/ui/runs?before=garbage").status_code == 400
        started = time.perf_counter()
        assert client.get("/ui/runs").status_code == 200
        assert time.perf_counter() - started < 2


def test_agent_versions_diff(ui_server: UiServer) -> None:
    spec = {"name": "calc", "model": "function:calc", "tools": ["add"],
            "description": f"adds numbers quickly {XSS}"}  # fmt: skip
    with ui_server.api() as api:
        made = api.post("/v1/agents", json={"spec": spec})
        assert made.status_code == 201
        newest = made.json()["version"]
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client)
        page = client.get(f"/ui/agents/calc?a={newest - 1}&b={newest}").text
        assert '<span class="del">-  &#34;description&#34;: &#34;adds numbers &lt;script' in page
        assert '<span class="add">+  &#34;description&#34;: &#34;adds numbers quickly' in page
        assert client.get("/ui/agents/calc?a=1&b=999").status_code == 400


def test_a_knowledge_source_is_deleted_only_after_confirming(ui_server: UiServer) -> None:
    with ui_server.api() as api:
        assert api.post("/v1/knowledge/collections", json={"name": "manuals"}).is_success
        doc = {"uri": "manuals/boiler.md", "text": "Bleed the radiators in autumn."}
        assert api.post("/v1/knowledge/collections/manuals/documents", json=doc).is_success
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client)
        listed = client.get("/ui/knowledge?collection=manuals&q=radiators").text
        assert "Bleed the radiators" in listed and "manuals/boiler.md" in listed
        confirm = client.get("/ui/knowledge/manuals/delete?uri=manuals/boiler.md")
        assert confirm.status_code == 200 and "cannot be undone" in confirm.text
        assert "manuals/boiler.md" in client.get("/ui/knowledge?collection=manuals").text
        deleted = client.post(
            "/ui/knowledge/manuals/delete",
            data={"csrf": csrf_of(confirm.text), "uri": "manuals/boiler.md"},
        )
        assert deleted.status_code == 303
        assert "manuals/boiler.md" not in client.get("/ui/knowledge?collection=manuals").text
        assert client.get("/ui/knowledge/manuals/delete?uri=nope").status_code == 404


def test_another_tenants_trace_and_memory_are_not_found(ui_server: UiServer) -> None:
    run = _run(ui_server, "calc", "trace me")
    with ui_server.api() as api:
        traces = api.get("/v1/traces", params={"run_id": run["id"]}).json()["data"]
        memory = api.post("/v1/memory/agents/calc/memories", json={"text": "mine only"}).json()
    assert traces, "the run left no trace"
    with httpx.Client(base_url=ui_server.url) as client:
        sign_in(client, ui_server.other_key)
        assert client.get(f"/ui/traces/{traces[0]['trace_id']}").status_code == 404
        assert client.get(f"/ui/memory/calc/{memory['id']}/delete").status_code == 404
        token = csrf_of(client.get("/ui/runs").text)
        gone = client.post(f"/ui/memory/calc/{memory['id']}/delete", data={"csrf": token})
        assert gone.status_code == 404
        assert "mine only" not in client.get("/ui/memory?agent=calc").text
    with ui_server.api() as api:
        assert api.get(f"/v1/memory/agents/calc/memories/{memory['id']}").status_code == 200
