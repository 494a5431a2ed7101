"""Seed 004's five endpoints on a real app: /execute runs the coder graph in the tenant's
coder workspace, /session/{id}, /tools, /tool/execute, /code/search; errors as problem+json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.coding_tasks import make_tasks

from roost.coding.bundled import coder_spec
from roost.coding.scripted import follow
from roost.llm.testing import FunctionModel
from tests.server.conftest import AppFactory


async def test_the_five_endpoints(
    make_app: AppFactory, auth: dict[str, str], roost_home: Path
) -> None:
    task = next(t for t in make_tasks() if t.name == "rename-calc_total")
    async with make_app() as (app, client):
        client.headers.update(auth)
        tenant = app.state.default_tenant_id
        workspace = roost_home / "workspaces" / tenant
        workspace.mkdir(parents=True)
        task.materialise(workspace)
        (workspace / task.name).rename(workspace / "coder")
        app.state.llm.router.registry.register(FunctionModel(follow(task.solution), "function:c"))
        # The bundled spec with a scripted model: the same graph kind (labels.kind = coder).
        spec: dict[str, Any] = {**coder_spec().model_dump(mode="json"), "model": "function:c"}
        created = await client.post("/v1/agents", json={"spec": spec})
        assert created.status_code == 201, created.text

        tools = (await client.get("/tools")).json()["data"]
        names = {t["name"] for t in tools}
        assert {"apply_edit", "apply_patch", "code_search", "repo_map", "explain_code"} <= names

        found = await client.post("/code/search", json={"query": "calc total"})
        assert found.status_code == 200, found.text
        hits = found.json()["data"]
        assert hits[0]["path"] == "pkg/lib.py" and hits[0]["symbol"] == "calc_total"
        assert "keyword+semantic" in found.json()["index"]  # kept in the knowledge base
        assert set(hits[0]["ranks"]) == {"keyword", "semantic"}

        run = await client.post("/execute", json={"agent": "coder", "input": task.task,
                                                   "session_id": "ses-1"})  # fmt: skip
        body = run.json()
        assert body["status"] == "succeeded", body
        assert body["output"]["tests"]["passed"] is True
        assert "def compute_total(" in (workspace / "coder/pkg/lib.py").read_text()

        session = (await client.get("/session/ses-1")).json()
        assert session["values"]["status"] == "succeeded" and session["values"]["output"]["diff"]

        listed = await client.post(
            "/tool/execute", json={"tool": "list_dir", "arguments": {"path": "."}}
        )
        assert listed.status_code == 200 and listed.json()["status"] == "ok"

        missing = await client.post("/tool/execute", json={"tool": "nope", "arguments": {}})
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        empty = await client.post("/code/search", json={"query": "!!!"})
        assert empty.status_code == 422
        assert empty.headers["content-type"].startswith("application/problem+json")


async def test_the_bundled_coder_is_there_for_every_tenant(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (_, client):
        client.headers.update(auth)
        got = await client.get("/v1/agents/coder")
        assert got.status_code == 200, got.text
        assert got.json()["spec"]["labels"] == {"kind": "coder"}
