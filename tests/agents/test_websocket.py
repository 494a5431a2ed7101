"""Run events over a WebSocket (Starlette's TestClient drives the socket)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from roost.config import load_settings
from roost.llm.testing import FunctionModel
from roost.server.app import create_app
from tests.agents.conftest import ToolLog, make_test_tools
from tests.agents.test_api import answer_with_tools

KEY = "ws-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


def test_run_events_over_a_websocket(roost_home: Path) -> None:
    settings = load_settings(env={"ROOST_HOME": str(roost_home), "ROOST_API_KEY": KEY,
                                  "ROOST_ENGINE__ENABLED": "false"})  # fmt: skip
    app = create_app(settings)
    with TestClient(app, headers=AUTH) as client:
        app.state.llm.router.registry.register(FunctionModel(answer_with_tools, "function:agent"))
        tools = make_test_tools(ToolLog())
        app.state.tools.registry.add_for_tenant(app.state.default_tenant_id, tools)
        spec = {"name": "calc", "model": "function:agent", "tools": ["add"]}
        assert client.post("/v1/agents", json={"spec": spec}).status_code == 201
        thread = client.post("/v1/threads", json={}).json()["id"]
        run = client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "x", "mode": "background"}
        ).json()
        events = []
        with client.websocket_connect(f"/v1/runs/{run['id']}/ws", headers=AUTH) as socket:
            while True:
                event = socket.receive_json()
                events.append(event)
                if event["event"] == "run_end":
                    break
        assert events[-1]["run"]["output"] == "the sum is 42"
        assert "tool_result" in [e["event"] for e in events]
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/v1/runs/run_nope/ws", headers=AUTH) as socket,
        ):
            socket.receive_json()
        assert closed.value.code == 4404
