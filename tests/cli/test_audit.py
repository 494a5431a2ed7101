"""``roost audit list|verify`` on a real SQLite home; verify names a tampered record."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app
from roost.config import load_settings


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch, without_roost_env: None) -> CliRunner:
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.chdir(roost_home)
    return CliRunner()


def _db_file(roost_home: Path) -> str:
    url = load_settings(env={"ROOST_HOME": str(roost_home)}).database_url
    return url.split("///", 1)[1]


def test_cli_operations_are_listed_and_verify(roost: CliRunner) -> None:
    assert roost.invoke(app, ["tenants", "create", "acme"]).exit_code == 0
    assert roost.invoke(app, ["keys", "create", "--tenant", "acme"]).exit_code == 0
    listed = roost.invoke(app, ["audit", "list", "--tenant", "acme", "--json"])
    assert listed.exit_code == 0, listed.output
    actions = [e["action"] for e in json.loads(listed.stdout)["data"]]
    assert actions == ["api_key.create", "tenant.create"]
    prefixed = roost.invoke(app, ["audit", "list", "--action", "tenant.*", "--json"])
    assert [e["action"] for e in json.loads(prefixed.stdout)["data"]] == ["tenant.create"]
    verified = roost.invoke(app, ["audit", "verify", "--json"])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["ok"] is True and sum(t["checked"] for t in report["tenants"].values()) == 2


def test_verify_exits_non_zero_naming_the_tampered_record(
    roost: CliRunner, roost_home: Path
) -> None:
    for name in ("t1", "t2", "t3"):
        assert roost.invoke(app, ["tenants", "create", name]).exit_code == 0
    assert roost.invoke(app, ["keys", "create", "--tenant", "t2"]).exit_code == 0
    rows = json.loads(roost.invoke(app, ["audit", "list", "--tenant", "t2", "--json"]).stdout)
    victim = rows["data"][-1]["id"]  # t2's first record: tenant.create
    with sqlite3.connect(_db_file(roost_home)) as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("UPDATE audit_events SET actor = 'someone-else' WHERE id = ?", (victim,))
    result = roost.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert victim in result.output and "t2" in result.output and "changed" in result.output
    as_json = roost.invoke(app, ["audit", "verify", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["breaks"][0]["event_id"] == victim
