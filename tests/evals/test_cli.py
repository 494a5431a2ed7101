"""``roost prompts|datasets|experiments`` on a real SQLite home, and ``roost evals run``
against a real server, with ``--json`` output parsed as scripts would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app
from roost.config import load_settings
from roost.llm.testing import FunctionModel
from roost.server.app import create_app
from tests.agents.test_cli import KEY, cli_env, roost, roost_cli  # noqa: F401
from tests.evals.test_evals_api import ITEMS, doubler
from tests.support.uvicorn_thread import ThreadedServer


def ok(result: object) -> object:
    assert getattr(result, "exit_code", 1) == 0, getattr(result, "output", "")
    return json.loads(str(getattr(result, "stdout", "")))


def test_prompts_datasets_and_experiments_on_the_local_store(
    roost: CliRunner,  # noqa: F811
    roost_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROOST_ENGINE__ENABLED")  # the local model is what the agent names
    first = ok(
        roost.invoke(
            app,
            [
                "prompts",
                "create",
                "tone",
                "--template",
                "Be {{ mood }}.",
                "--temperature",
                "0.2",
                "--label",
                "production",
                "--json",
            ],
        )
    )
    assert first == {**first, "version": 1, "variables": ["mood"], "labels": ["production"]}
    ok(roost.invoke(app, ["prompts", "create", "tone", "--template", "Be terse.", "--json"]))
    moved = ok(roost.invoke(app, ["prompts", "label", "tone", "staging", "2", "--json"]))
    assert moved["labels"] == ["staging"]  # type: ignore[index]
    listed = ok(roost.invoke(app, ["prompts", "list", "--json"]))
    assert [(p["name"], p["version"]) for p in listed] == [("tone", 2)]  # type: ignore[union-attr]
    shown = ok(roost.invoke(app, ["prompts", "show", "tone", "--ref", "production", "--json"]))
    assert shown["template"] == "Be {{ mood }}."  # type: ignore[index]
    table = roost.invoke(app, ["prompts", "list"])
    assert "tone" in table.output and "staging" in table.output
    bad = roost.invoke(app, ["prompts", "create", "tone", "--template", "{% if %}"])
    assert bad.exit_code == 1 and "does not parse" in bad.output

    items = roost_home / "items.jsonl"
    items.write_text("\n".join(json.dumps(i) for i in ITEMS[:3]))
    created = ok(roost.invoke(app, ["datasets", "create", "doubles", "--file", str(items),
                                    "--json"]))  # fmt: skip
    assert created["version"] == 1 and created["item_count"] == 3  # type: ignore[index]
    added = ok(roost.invoke(app, ["datasets", "add", "doubles", "--input", "double 9",
                                  "--expected", "18", "--json"]))  # fmt: skip
    assert added["version"] == 2 and added["item_count"] == 4  # type: ignore[index]
    old = ok(roost.invoke(app, ["datasets", "show", "doubles", "--version", "1", "--json"]))
    assert len(old["items"]) == 3  # type: ignore[index]
    assert ok(roost.invoke(app, ["datasets", "list", "--json"]))[0]["version"] == 2  # type: ignore[index]

    spec = roost_home / "helper.yaml"
    spec.write_text("name: helper\nmodel: local:smollm2-135m-instruct\nprompt: tone@production\n")
    assert roost.invoke(app, ["agents", "create", str(spec)]).exit_code == 0
    experiment = roost_home / "exp.yaml"
    experiment.write_text(
        "name: tone-test\nagent: helper\nvariants:\n"
        "  - {name: a, prompt: tone@1}\n  - {name: b, prompt: tone@2}\n"
    )
    made = ok(roost.invoke(app, ["experiments", "create", str(experiment), "--json"]))
    assert made["status"] == "active"  # type: ignore[index]
    report = ok(roost.invoke(app, ["experiments", "show", "tone-test", "--json"]))
    assert [v["name"] for v in report["variants_report"]] == ["a", "b"]  # type: ignore[index]
    assert report["significance"]["success"] is None  # type: ignore[index]  # no runs yet
    again = roost.invoke(app, ["experiments", "create", str(experiment)])
    assert again.exit_code == 1 and "already runs on agent" in again.output
    assert ok(roost.invoke(app, ["experiments", "list", "--json"]))[0]["name"] == "tone-test"  # type: ignore[index]


def test_evals_run_on_a_server_shows_the_scores(roost: CliRunner, roost_home: Path) -> None:  # noqa: F811
    settings = load_settings(env={"ROOST_HOME": str(roost_home), "ROOST_API_KEY": KEY,
                                  "ROOST_ENGINE__ENABLED": "false"})  # fmt: skip
    server_app = create_app(settings)
    server = ThreadedServer(server_app).start()
    try:
        server_app.state.llm.router.registry.register(FunctionModel(doubler, "function:agent"))
        spec = roost_home / "doubler.yaml"
        spec.write_text("name: doubler\nmodel: function:agent\n")
        assert (
            roost.invoke(app, ["agents", "create", str(spec), "--url", server.url]).exit_code == 0
        )
        items = roost_home / "items.json"
        items.write_text(json.dumps(ITEMS[:3]))
        made = roost.invoke(app, ["datasets", "create", "doubles", "-f", str(items), "--url",
                                  server.url])  # fmt: skip
        assert made.exit_code == 0, made.output
        # In a child process, as a user runs it (the server starts DBOS for the runs).
        env = cli_env(roost_home) | {"ROOST_KEY": KEY}
        ran = roost_cli("evals", "run", "doubles", "--agent", "doubler", "--url", server.url,
                        "--json", env=env)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        result = json.loads(ran.stdout)
        assert result["summary"]["passed"] == 2 and result["item_count"] == 3
        # DBOS runs now: commands in this process no longer start it.
        table = roost.invoke(app, ["evals", "show", result["id"], "--url", server.url])
        assert "2/3 passed, 67%" in table.stdout, table.output
        listed = ok(roost.invoke(app, ["evals", "list", "--url", server.url, "--json"]))
        assert [e["id"] for e in listed] == [result["id"]]  # type: ignore[union-attr]
        refused = roost.invoke(app, ["evals", "run", "doubles", "--agent", "doubler", "--scorer",
                                     '{"type": "python", "entry_point": "os:system"}', "--url",
                                     server.url])  # fmt: skip
        assert refused.exit_code == 1 and "not one of the scorers" in refused.output
    finally:
        server.stop()
