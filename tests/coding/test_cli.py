"""``roost code`` in process: a planted bug fixed by the scripted model, each output format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.coding_tasks import make_tasks
from typer.testing import CliRunner

from roost.cli.main import app


@pytest.fixture
def cli_env(roost_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    task = next(t for t in make_tasks() if t.name == "bug-multiply")
    script = tmp_path / "script.json"
    script.write_text(json.dumps({
        "plan": task.solution.plan, "summary": task.solution.summary,
        "steps": [{"tool": n, "arguments": a} for n, a in task.solution.steps],
    }))  # fmt: skip
    for name, value in {
        "ROOST_HOME": str(roost_home), "ROOST_ENGINE__ENABLED": "false",
        "ROOST_PLUGINS": '["roost.coding.scripted"]', "CODER_SCRIPT": str(script),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    repo = task.materialise(tmp_path / "repos")
    monkeypatch.chdir(repo)
    return repo


def test_roost_code_makes_the_failing_test_pass(cli_env: Path) -> None:
    result = CliRunner().invoke(
        app, ["code", "make the failing test pass", "-p", "--output-format", "json", "--yes",
              "--model", "scripted:coder"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert body["status"] == "succeeded"
    assert body["output"]["tests"]["passed"] is True
    assert "+    return a * b" in body["output"]["diff"]
    assert "return a * b" in (cli_env / "calc/ops.py").read_text()


def test_stream_json_prints_one_event_per_line_then_the_result(cli_env: Path) -> None:
    result = CliRunner().invoke(
        app, ["code", "make the failing test pass", "-p", "--output-format", "stream-json",
              "--model", "scripted:coder"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    types = [line["type"] for line in lines]
    assert types[0] == "node" and "plan" in types and types[-1] == "result"
    assert any(line["type"] == "tool_result" and "diff" in line for line in lines)


def test_not_a_repository_is_a_clear_error(cli_env: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = CliRunner().invoke(app, ["code", "x", "--repo", str(plain), "-p"])
    assert result.exit_code == 1
    said = " ".join(result.output.split())  # however the terminal width wraps it
    assert "not a git repository" in said and "--init" in said
    assert str(plain) in result.output  # the path itself is never broken across lines
