"""`roost agents coordinate` against a real server: progress, answer, --json, failures."""

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
from tests.agents.test_coordinator_runs import PLAN, Gate, boss, worker
from tests.support.uvicorn_thread import ThreadedServer

KEY = "cli-coordinate-key-0123456789abcdef"


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.setenv("ROOST_API_KEY", KEY)
    monkeypatch.setenv("ROOST_ENGINE__ENABLED", "false")
    return CliRunner()


def test_coordinate_shows_the_plan_and_prints_the_answer(
    roost: CliRunner, roost_home: Path
) -> None:
    settings = load_settings(env={"ROOST_HOME": str(roost_home), "ROOST_API_KEY": KEY,
                                  "ROOST_ENGINE__ENABLED": "false"})  # fmt: skip
    server_app = create_app(settings)
    server = ThreadedServer(server_app).start()
    try:
        models = server_app.state.llm.router.registry
        models.register(FunctionModel(boss, "function:boss"))
        models.register(FunctionModel(worker, "function:worker"))
        gate = Gate()
        gate.release.set()
        tenant = server_app.state.default_tenant_id
        server_app.state.tools.registry.add_for_tenant(tenant, gate.toolset())
        # Created on the server, which offers the scripted models and the tool they name.
        for name, description in (("researcher", "finds facts"), ("writer", "writes prose")):
            spec = roost_home / f"{name}.yaml"
            spec.write_text(
                f"name: {name}\ndescription: {description}\nmodel: function:worker\n"
                "tools: [lookup]\n"
            )
            created = roost.invoke(app, ["create", str(spec), "--url", server.url])
            assert created.exit_code == 0, created.output

        ran = roost.invoke(
            app, ["coordinate", "an essay on roosts", "--model", "function:boss",
                  "--url", server.url],
        )  # fmt: skip
        assert ran.exit_code == 0, ran.output
        assert "plan: essay → writer after facts: write it up" in ran.output
        assert "✓ facts" in ran.output and "✓ essay" in ran.output
        assert "final: facts: researcher found a place where birds rest" in ran.output
        assert "succeeded on thread" in ran.output

        plan_file = roost_home / "plan.json"
        plan_file.write_text(json.dumps(PLAN))
        as_json = roost.invoke(
            app, ["coordinate", "again", "--plan", str(plan_file), "-a", "researcher",
                  "-a", "writer", "--model", "function:boss", "--json", "--url", server.url],
        )  # fmt: skip
        assert as_json.exit_code == 0, as_json.output
        # the in-process server logs to the same stdout; the run is the JSON document
        run = json.loads(as_json.stdout[as_json.stdout.index("{\n") :])
        assert run["status"] == "succeeded" and run["agent"] == "coordinator:run"
        assert set(run["output"]["results"]) == {"facts", "essay"}

        unknown = roost.invoke(app, ["coordinate", "x", "-a", "nobody", "--url", server.url])
        assert unknown.exit_code != 0
        assert "no agent 'nobody'" in unknown.output
    finally:
        server.stop()
