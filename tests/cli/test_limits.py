"""``roost limits``: overrides set, shown (as JSON) and cleared through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(__import__("os").environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.chdir(roost_home)  # no ./roost.toml of the developer's
    return CliRunner()


def test_set_show_and_clear_a_tenants_limits(roost: CliRunner) -> None:
    assert roost.invoke(app, ["tenants", "create", "acme"]).exit_code == 0
    result = roost.invoke(
        app, ["limits", "set", "acme", "--rpm", "60", "--key-concurrency", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    assert report["effective"]["tenant"]["requests_per_minute"] == 60
    assert report["effective"]["key"]["concurrency"] == 0
    assert report["override"] == {"tenant": {"requests_per_minute": 60}, "key": {"concurrency": 0}}
    # A second set keeps what it does not mention.
    roost.invoke(app, ["limits", "set", "acme", "--tpm", "500"])
    [shown] = json.loads(roost.invoke(app, ["limits", "show", "acme", "--json"]).output)
    assert shown["effective"]["tenant"] == {
        "requests_per_minute": 60, "tokens_per_minute": 500, "concurrency": 64,
    }  # fmt: skip
    assert "override removed" in roost.invoke(app, ["limits", "clear", "acme"]).output
    [cleared] = json.loads(roost.invoke(app, ["limits", "show", "acme", "--json"]).output)
    assert cleared["override"] is None
    assert cleared["effective"]["tenant"]["requests_per_minute"] == 3000
    unknown = roost.invoke(app, ["limits", "show", "nobody"])
    assert unknown.exit_code != 0
