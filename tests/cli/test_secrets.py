"""``roost secrets set|list|delete``: the value goes in on stdin and never comes out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app

VALUE = "sk-h-audit-cli-0123456789"


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch, without_roost_env: None) -> CliRunner:
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.chdir(roost_home)
    return CliRunner()


def test_set_list_delete_never_print_the_value(roost: CliRunner, roost_home: Path) -> None:
    stored = roost.invoke(app, ["secrets", "set", "openai"], input=VALUE + "\n")
    assert stored.exit_code == 0, stored.output
    assert "secret:openai" in stored.output and VALUE not in stored.output
    listed = roost.invoke(app, ["secrets", "list", "--json"])
    assert listed.exit_code == 0
    assert [s["name"] for s in json.loads(listed.stdout)] == ["openai"]
    assert VALUE not in listed.output
    assert VALUE.encode() not in (roost_home / "roost.db").read_bytes()
    audit = roost.invoke(app, ["audit", "list", "--action", "secret.*", "--json"])
    assert [e["action"] for e in json.loads(audit.stdout)["data"]] == ["secret.set"]
    assert roost.invoke(app, ["secrets", "delete", "openai"]).exit_code == 0
    missing = roost.invoke(app, ["secrets", "delete", "openai"])
    assert missing.exit_code == 1 and "not found" in missing.output
    assert json.loads(roost.invoke(app, ["secrets", "list", "--json"]).stdout) == []


def test_bad_name_and_empty_value_are_usage_errors(roost: CliRunner) -> None:
    assert roost.invoke(app, ["secrets", "set", "../x"], input=VALUE).exit_code == 2
    empty = roost.invoke(app, ["secrets", "set", "openai"], input="")
    assert empty.exit_code == 2 and "no value" in empty.output
