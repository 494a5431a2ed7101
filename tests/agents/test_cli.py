"""`roost agents create|list|show|run` against a real SQLite home and a real server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.agents import app
from roost.config import load_settings
from roost.llm.testing import FunctionModel
from roost.server.app import create_app
from tests.agents.conftest import ToolLog, make_test_tools
from tests.agents.test_api import answer_with_tools
from tests.support.uvicorn_thread import ThreadedServer

KEY = "cli-test-key-0123456789abcdef"


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.setenv("ROOST_API_KEY", KEY)
    monkeypatch.setenv("ROOST_ENGINE__ENABLED", "false")
    return CliRunner()


def test_create_list_show_on_the_local_store(
    roost: CliRunner, roost_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROOST_ENGINE__ENABLED")  # the local model is what the spec names
    spec = roost_home / "reader.yaml"
    spec.write_text("name: reader\nmodel: local:smollm2-135m-instruct\ntools: [read_file]\n"
                    "max_iterations: 4\n")  # fmt: skip
    created = roost.invoke(app, ["create", str(spec), "--tag", "prod"])
    assert created.exit_code == 0, created.output
    assert "created reader v1" in created.output
    again = roost.invoke(app, ["create", str(spec)])
    assert "unchanged, still reader v1" in again.output
    listed = roost.invoke(app, ["list"])
    assert "reader  v1 [prod]  model=local:smollm2-135m-instruct  tools=read_file" in listed.output
    shown = roost.invoke(app, ["show", "reader", "--version", "prod", "--json"])
    assert json.loads(shown.output)["spec"]["max_iterations"] == 4
    missing = roost.invoke(app, ["show", "nope"])
    assert missing.exit_code == 1 and "no agent 'nope'" in missing.output
    monkeypatch.setenv("ROOST_ENGINE__ENABLED", "false")
    unserved = roost.invoke(app, ["create", str(spec)])
    assert unserved.exit_code == 1
    assert "the local engine does not serve 'smollm2-135m-instruct'" in unserved.output


def test_create_and_run_on_a_server(roost: CliRunner, roost_home: Path) -> None:
    spec = roost_home / "calc.yaml"
    spec.write_text("name: calc\nmodel: function:agent\ntools: [add]\nmax_iterations: 4\n")
    # This machine's store offers neither the scripted model nor the tool: refused.
    refused_here = roost.invoke(app, ["create", str(spec)])
    assert refused_here.exit_code == 1
    assert "unknown provider 'function'" in refused_here.output
    assert "no tool matches 'add'" in refused_here.output

    settings = load_settings(env={"ROOST_HOME": str(roost_home), "ROOST_API_KEY": KEY,
                                  "ROOST_ENGINE__ENABLED": "false"})  # fmt: skip
    server_app = create_app(settings)
    server = ThreadedServer(server_app).start()
    try:
        server_app.state.llm.router.registry.register(
            FunctionModel(answer_with_tools, "function:agent")
        )
        tools = make_test_tools(ToolLog())
        server_app.state.tools.registry.add_for_tenant(server_app.state.default_tenant_id, tools)
        created = roost.invoke(app, ["create", str(spec), "--url", server.url, "--json"])
        assert created.exit_code == 0, created.output
        assert json.loads(created.output)["created"] is True
        ran = roost.invoke(app, ["run", "calc", "what is 2+40?", "--url", server.url])
        assert ran.exit_code == 0, ran.output
        assert "the sum is 42" in ran.output
        assert "succeeded" in ran.output
        refused = roost.invoke(app, ["run", "ghost", "hi", "--url", server.url])
        assert refused.exit_code == 1 and "no agent 'ghost'" in refused.output
        tenant = roost.invoke(app, ["list", "--url", server.url, "--tenant", "acme"])
        assert tenant.exit_code == 2 and "API key's tenant" in tenant.output
    finally:
        server.stop()


def test_agents_is_a_roost_command(roost: CliRunner) -> None:
    from roost.cli.main import app as roost_app

    result = roost.invoke(roost_app, ["agents", "list"])
    assert result.exit_code == 0, result.output
