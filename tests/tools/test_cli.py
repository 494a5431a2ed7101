"""`roost doctor`, `roost tools`, `roost approvals` against a real SQLite home."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.chdir(roost_home)
    return CliRunner()


def test_doctor_reports_the_isolation_level(roost: CliRunner) -> None:
    result = roost.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "sandbox jail" in result.output and "bubblewrap (user, pid, net, mount" in result.output
    assert "pids-cgroup" in result.output or "rlimit" in result.output


def test_tools_run_and_approvals_round_trip(roost: CliRunner, roost_home: Path) -> None:
    listed = roost.invoke(app, ["tools", "list"])
    assert listed.exit_code == 0 and "git_push" in listed.output and "destructive" in listed.output
    write = roost.invoke(
        app, ["tools", "run", "write_file", "-a", '{"path": "x.txt", "content": "1"}']
    )
    assert write.exit_code == 0, write.output
    assert json.loads(write.output)["status"] == "ok"
    pending = roost.invoke(app, ["tools", "run", "delete_file", "-a", '{"path": "x.txt"}'])
    assert pending.exit_code == 1
    approval_id = json.loads(pending.output)["approval_id"]
    queue = roost.invoke(app, ["approvals", "list"])
    assert approval_id in queue.output and "delete_file" in queue.output
    denied = roost.invoke(app, ["approvals", "deny", approval_id, "--reason", "keep it"])
    assert denied.exit_code == 0 and "denied" in denied.output
    again = roost.invoke(app, ["approvals", "approve", approval_id])
    assert again.exit_code == 1 and "already denied" in again.output
    retry = roost.invoke(
        app, ["tools", "run", "delete_file", "-a", '{"path": "x.txt"}', "--approval", approval_id]
    )
    assert json.loads(retry.output)["error"]["message"] == "cli denied this call: keep it"
    assert (roost_home / "workspaces").exists()
