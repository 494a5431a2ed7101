"""`roost agents create|list|show|run` against a real SQLite home and a real server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.agents import app
from roost.config import load_settings
from roost.llm.messages import Message, ToolCallPart
from roost.llm.testing import CallInfo, FunctionModel
from roost.server.app import create_app
from tests.agents.conftest import ToolLog, make_test_tools
from tests.agents.test_api import agent_app, answer_with_tools, new_thread, sse_events
from tests.server.conftest import AppFactory
from tests.support.tool_results import tool_texts
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


def cli_env(home: Path) -> dict[str, str]:
    """The environment of a ``roost`` child process on ``home``, without a local model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    return env | {"ROOST_HOME": str(home), "ROOST_ENGINE__ENABLED": "false",
                  "PYTHONPATH": str(Path(__file__).parents[2] / "src")}  # fmt: skip


def roost_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roost.cli.main", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


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
        # In a child process, as a user runs it: the run makes this process's server start
        # DBOS, whose log handler must not bind to CliRunner's short-lived stdout.
        ran = roost_cli("agents", "run", "calc", "what is 2+40?", "--url", server.url,
                        env=cli_env(roost_home) | {"ROOST_KEY": KEY})  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert "the sum is 42" in ran.stdout
        assert "succeeded" in ran.stderr
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


async def test_an_approval_decided_on_the_local_store_resumes_the_servers_run(
    make_app: AppFactory, auth: dict[str, str], roost_home: Path
) -> None:
    def dba(info: CallInfo) -> Message | str:
        results = tool_texts(info)
        if not results:
            return Message("assistant", (ToolCallPart("c1", "drop_table", '{"table": "old"}'),))
        return results[-1]

    async with agent_app(make_app, auth, dba) as (_app, client, log):
        thread = await new_thread(client)
        run = (
            await client.post(f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "drop"})
        ).json()
        assert run["status"] == "interrupted", run
        approval_id = run["interrupts"][0]["value"]["approvals"][0]["approval_id"]
        # Another process, no --url: the decision goes to the store and re-queues the run,
        # which the server (executing runs) takes up.
        decided = await asyncio.to_thread(
            roost_cli, "approvals", "approve", approval_id, env=cli_env(roost_home)
        )
        assert decided.returncode == 0, decided.stderr
        assert f"{approval_id}: approved (drop_table)" in decided.stdout
        async with client.stream("GET", f"/v1/runs/{run['id']}/events") as response:
            events = await sse_events(response)
        assert events[-1]["run"]["status"] == "succeeded", events[-1]
        assert events[-1]["run"]["output"] == "dropped old"
        assert log.calls == [("drop_table", {"table": "old"})]
