"""HTTP: GET /v1/tools, POST /v1/tools/{name}/execute, the approvals API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from roost.observe.tracing import RECENT_SPANS
from roost.security.api_keys import split_key
from tests.server.conftest import BOOTSTRAP_KEY, AppFactory


async def test_list_tools_shows_name_description_risk_and_schema(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (_, client):
        response = await client.get("/v1/tools", headers=auth)
        assert response.status_code == 200
        tools = {t["name"]: t for t in response.json()["data"]}
        assert {"read_file", "run_command", "git_push", "http_fetch"} <= set(tools)
        assert tools["git_push"]["risk"] == "destructive"
        assert tools["read_file"]["input_schema"]["required"] == ["path"]
        assert tools["read_file"]["description"]
        assert (await client.get("/v1/tools")).status_code == 401


async def _execute(
    client: httpx.AsyncClient, auth: dict[str, str], name: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/v1/tools/{name}/execute", json=body, headers=auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_execute_returns_the_issue_shape(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (_, client):
        written = await _execute(
            client, auth, "write_file", arguments={"path": "a.txt", "content": "hi"}
        )
        assert written["status"] == "ok" and written["error"] is None
        assert written["output"] == {"path": "a.txt", "bytes_written": 2}
        refused = await _execute(client, auth, "read_file", arguments={"path": "../x"})
        assert refused["status"] == "error" and refused["output"] is None
        assert refused["error"]["type"] == "path_refused" and "'..'" in refused["error"]["message"]
        missing = await client.post("/v1/tools/nope/execute", json={}, headers=auth)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


async def test_approval_round_trip_over_http(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (app, client):
        await _execute(client, auth, "write_file", arguments={"path": "old.txt", "content": "x"})
        pending = await _execute(client, auth, "delete_file", arguments={"path": "old.txt"})
        assert pending["status"] == "pending_approval"
        approval_id = pending["approval_id"]
        queue = (await client.get("/v1/approvals?status=pending", headers=auth)).json()["data"]
        assert [(a["id"], a["tool"], a["arguments"]) for a in queue] == [
            (approval_id, "delete_file", {"path": "old.txt"})
        ]
        own = await client.post(
            f"/v1/approvals/{approval_id}", json={"decision": "approve"}, headers=auth
        )
        assert own.status_code == 403 and "separation of duties" in own.text
        _, other_key = await app.state.platform.api_keys.create(
            app.state.default_tenant_id, "approver"
        )
        approver = {"Authorization": f"Bearer {other_key}"}
        bad_edit = await client.post(
            f"/v1/approvals/{approval_id}",
            json={"decision": "edit", "arguments": {"path": 5}},
            headers=approver,
        )
        assert bad_edit.status_code == 400
        decided = await client.post(
            f"/v1/approvals/{approval_id}", json={"decision": "approve"}, headers=approver
        )
        assert decided.status_code == 200 and decided.json()["status"] == "approved"
        twice = await client.post(
            f"/v1/approvals/{approval_id}", json={"decision": "deny"}, headers=auth
        )
        assert twice.status_code == 409
        done = await _execute(
            client, auth, "delete_file", arguments={"path": "old.txt"}, approval_id=approval_id
        )
        assert done["status"] == "ok"
        gone = await _execute(client, auth, "read_file", arguments={"path": "old.txt"})
        assert gone["error"]["type"] == "not_found"


async def test_roles_without_approval_rights_cannot_decide(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app(env={"ROOST_TOOLS__DEFAULT_ROLE": "developer"}) as (_, client):
        pending = await _execute(client, auth, "git_push", arguments={})
        response = await client.post(
            f"/v1/approvals/{pending['approval_id']}", json={"decision": "approve"}, headers=auth
        )
        assert response.status_code == 403 and "may not decide" in response.text


class _FakeHit:
    text, uri, line_start, line_end, score = "def parse(): ...", "src/p.py", 3, 4, 0.91


class _FakeMemory:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str, int]] = []

    async def search_knowledge(
        self, tenant_id: str, collection: str, query: str, *, k: int
    ) -> list[_FakeHit]:
        self.asked.append((tenant_id, collection, query, k))
        return [_FakeHit()]


async def test_semantic_code_search_uses_the_knowledge_base_when_present(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        app.state.kernel.memory = None
        absent = await _execute(client, auth, "search_code_semantic", arguments={"query": "parse"})
        assert absent["error"]["type"] == "unavailable"
        memory = _FakeMemory()
        app.state.kernel.memory = memory
        found = await _execute(
            client, auth, "search_code_semantic", arguments={"query": "parse json", "k": 3}
        )
        assert found["output"]["hits"] == [
            {
                "text": "def parse(): ...",
                "uri": "src/p.py",
                "line_start": 3,
                "line_end": 4,
                "score": 0.91,
            }
        ]
        assert [(c, q, k) for _, c, q, k in memory.asked] == [("code", "parse json", 3)]


async def test_roles_from_roost_toml_bound_to_a_key(
    make_app: AppFactory, auth: dict[str, str], roost_home: Path
) -> None:
    key_id, _ = split_key(BOOTSTRAP_KEY)
    (roost_home / "roost.toml").write_text(
        "[tools.roles.auditor]\n"
        'max_risk = "read"\n'
        'tools = ["read_*", "list_dir"]\n'
        "[tools.role_bindings]\n"
        f'"key:{key_id}" = "auditor"\n'
    )
    async with make_app() as (_, client):
        listed = (await client.get("/v1/tools", headers=auth)).json()["data"]
        assert [tool["name"] for tool in listed] == ["list_dir", "read_file"]
        refused = await _execute(client, auth, "write_file", arguments={"path": "a", "content": ""})
        assert refused["error"]["type"] == "forbidden"
        assert "auditor" in refused["error"]["message"]


async def test_tool_calls_are_spans_and_metrics(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (_, client):
        RECENT_SPANS.clear()
        await _execute(client, auth, "list_dir", arguments={}, call_id="call-7")
        spans = [s for s in RECENT_SPANS.spans() if s.name == "execute_tool list_dir"]
        assert len(spans) == 1 and spans[0].attributes is not None
        assert spans[0].attributes["gen_ai.tool.call.id"] == "call-7"
        assert spans[0].attributes["roost.tool.status"] == "ok"
        metrics = (await client.get("/metrics")).text
        assert 'roost_tool_calls_total{status="ok",tool="list_dir"}' in metrics
