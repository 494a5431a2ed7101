"""Client-chosen ids live in the caller's tenant: the same ``/execute`` session id used by
two tenants gives two threads that never see each other (issue 17: B claiming an id first
made A's every call with it fail with 500)."""

from __future__ import annotations

import asyncio

from roost.llm.testing import CallInfo, FunctionModel
from tests.agents.conftest import ToolLog, make_test_tools
from tests.server.conftest import AppFactory


def echo(info: CallInfo) -> str:
    last = info.messages[-1]
    return f"heard {last.text}"


async def test_two_tenants_share_a_session_id_without_meeting(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        app.state.llm.router.registry.register(FunctionModel(echo, "function:agent"))
        platform = app.state.platform
        other = await platform.tenants.create("tenant-b")
        _, b_key = await platform.api_keys.create(other.id, "b")
        a_auth, b_auth = auth, {"Authorization": f"Bearer {b_key}"}
        for tenant_auth, tenant_id in ((a_auth, app.state.default_tenant_id), (b_auth, other.id)):
            app.state.tools.registry.add_for_tenant(tenant_id, make_test_tools(ToolLog()))
            spec = {"name": "echo", "model": "function:agent"}
            created = await client.post("/v1/agents", json={"spec": spec}, headers=tenant_auth)
            assert created.status_code == 201, created.text

        # B claims the id first; then both use it, at the same time too.
        first = await client.post(
            "/execute", json={"agent": "echo", "input": "b-secret", "session_id": "shared"},
            headers=b_auth,
        )  # fmt: skip
        assert first.status_code == 200, first.text
        a_run, b_run = await asyncio.gather(
            client.post("/execute", json={"agent": "echo", "input": "from-a",
                                          "session_id": "shared"}, headers=a_auth),
            client.post("/execute", json={"agent": "echo", "input": "b-again",
                                          "session_id": "shared"}, headers=b_auth),
        )  # fmt: skip
        assert a_run.status_code == 200 and b_run.status_code == 200, (a_run.text, b_run.text)
        assert a_run.json()["session_id"] == "shared", a_run.json()
        assert a_run.json()["status"] == "succeeded", a_run.json()["error"]

        a_session = (await client.get("/session/shared", headers=a_auth)).json()
        b_session = (await client.get("/session/shared", headers=b_auth)).json()
        assert "b-secret" not in str(a_session) and "b-again" not in str(a_session)
        assert "from-a" in str(a_session) and "from-a" not in str(b_session)
        assert "b-secret" in str(b_session)
        a_runs = (await client.get("/v1/threads/shared/runs", headers=a_auth)).json()["data"]
        assert len(a_runs) == 1
        # A tenant that never used the id cannot tell it exists elsewhere.
        third = await platform.tenants.create("tenant-c")
        _, c_key = await platform.api_keys.create(third.id, "c")
        missing = await client.get("/session/shared", headers={"Authorization": f"Bearer {c_key}"})
        assert missing.status_code == 404
