"""``roost models list`` and ``pull``, run in-process without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app
from tests.support.servers import free_port
from tests.support.tiny_model import write_tiny_llama


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(__import__("os").environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.setenv("ROOST_ENGINE__MODELS__TINY", str(write_tiny_llama(roost_home / "tiny")))
    monkeypatch.setenv("ROOST_ENGINE__MODELS__REMOTE", "org/remote-model")
    monkeypatch.chdir(roost_home)
    return CliRunner()


def test_list_shows_builtin_configured_and_remote_models(roost: CliRunner) -> None:
    table = roost.invoke(app, ["models", "list"])
    assert table.exit_code == 0, table.output
    for text in ("* smollm2-135m-instruct", "tiny", "remote", "hf-dir", "hf-repo", "builtin"):
        assert text in table.output
    listed = roost.invoke(app, ["models", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(listed.output)}
    assert list(rows) == ["smollm2-135m-instruct", "tiny", "remote"]
    assert (rows["tiny"]["kind"], rows["tiny"]["is_available"]) == ("hf-dir", True)
    assert rows["tiny"]["size_bytes"] > 0
    assert (rows["remote"]["is_available"], rows["remote"]["path"]) == (False, None)
    assert rows["smollm2-135m-instruct"]["is_default"]


def test_pull_of_a_repo_without_network_fails_naming_it(roost: CliRunner) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = roost.invoke(app, ["models", "pull", "remote", "--endpoint", closed])
    assert result.exit_code == 1
    assert "cannot download 'org/remote-model'" in result.output
    assert "[engine.models]" in result.output


def test_pull_of_an_unknown_name_lists_the_known_ones(roost: CliRunner) -> None:
    result = roost.invoke(app, ["models", "pull", "nobody"])
    assert result.exit_code == 1
    assert "no model named 'nobody'; known models: 'smollm2-135m-instruct'" in result.output


def test_pull_of_a_directory_that_is_there_reports_it_ready(roost: CliRunner) -> None:
    result = roost.invoke(app, ["models", "pull", "tiny"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("tiny: ready")
