"""The management commands, run in-process against a real SQLite store."""

from __future__ import annotations

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
    monkeypatch.chdir(roost_home)
    return CliRunner()


def test_help_lists_command_groups(roost: CliRunner) -> None:
    result = roost.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("serve", "config", "keys", "tenants", "version"):
        assert group in result.output


def test_keys_create_list_revoke(roost: CliRunner) -> None:
    created = roost.invoke(app, ["keys", "create", "--name", "ci"])
    assert created.exit_code == 0, created.output
    plaintext = created.output.strip().splitlines()[-1]
    key_id = plaintext.split("-")[1]
    listed = roost.invoke(app, ["keys", "list"])
    assert key_id in listed.output and "active" in listed.output
    assert plaintext not in listed.output
    revoked = roost.invoke(app, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0
    assert "revoked" in roost.invoke(app, ["keys", "list"]).output
    missing = roost.invoke(app, ["keys", "revoke", "000000000000"])
    assert missing.exit_code == 1
    assert "not found" in missing.output


def test_keys_for_unknown_tenant_explain_how_to_create_it(roost: CliRunner) -> None:
    result = roost.invoke(app, ["keys", "create", "--tenant", "acme"])
    assert result.exit_code == 1
    assert "roost tenants create acme" in result.output
    assert roost.invoke(app, ["tenants", "create", "acme"]).exit_code == 0
    assert roost.invoke(app, ["keys", "create", "--tenant", "acme"]).exit_code == 0
    assert "acme" in roost.invoke(app, ["keys", "list", "--tenant", "acme"]).output


def test_config_check_and_show(roost: CliRunner, roost_home: Path) -> None:
    ok = roost.invoke(app, ["config", "check"])
    assert ok.exit_code == 0 and "configuration OK" in ok.output
    (roost_home / "roost.toml").write_text("[auth]\nbootstrap_key = 'long-enough-secret-value'\n")
    shown = roost.invoke(app, ["config", "show"])
    assert shown.exit_code == 0
    assert "long-enough-secret-value" not in shown.output
    assert "roost.db" in shown.output
    (roost_home / "roost.toml").write_text("[auth]\nmode = 'sometimes'\n")
    bad = roost.invoke(app, ["config", "check"])
    assert bad.exit_code == 2
    assert "auth.mode" in bad.output


def test_version(roost: CliRunner) -> None:
    from roost import __version__

    assert roost.invoke(app, ["version"]).output.strip() == __version__


def test_roost_vars_that_are_not_settings_warn_instead_of_failing(roost: CliRunner) -> None:
    # README's curl examples export ROOST_KEY; the CLI reads it as the API key.
    quiet = roost.invoke(app, ["tenants", "list", "--json"], env={"ROOST_KEY": "roost-x"})
    assert quiet.exit_code == 0, quiet.output
    assert "warning" not in quiet.stderr
    typo = roost.invoke(app, ["tenants", "list"], env={"ROOST_SERVER__PROT": "9000"})
    assert typo.exit_code == 0, typo.output
    assert "ROOST_SERVER__PROT is not a Roost setting; ignored" in typo.stderr
    bad_value = roost.invoke(app, ["tenants", "list"], env={"ROOST_SERVER__PORT": "eighty"})
    assert bad_value.exit_code == 2 and "server.port" in bad_value.output


def test_roost_url_sends_stored_data_commands_to_a_server(roost: CliRunner) -> None:
    # Nothing listens on port 9: the command went over HTTP instead of the local store.
    remote = roost.invoke(app, ["agents", "list"], env={"ROOST_URL": "http://127.0.0.1:9"})
    assert remote.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in remote.output
    # Keys and tenants live only in the store: ROOST_URL does not apply to them.
    assert (
        roost.invoke(app, ["keys", "list"], env={"ROOST_URL": "http://127.0.0.1:9"}).exit_code == 0
    )
    local_only = roost.invoke(app, ["kb", "add", ".", "--url", "http://127.0.0.1:9"])
    assert local_only.exit_code == 2  # no such option: files are read on this machine


def test_keys_with_roles_operator_role_change_and_rotation(roost: CliRunner) -> None:
    import json

    assert roost.invoke(app, ["tenants", "create", "acme"]).exit_code == 0
    made = roost.invoke(app, ["keys", "create", "--tenant", "acme", "--role", "viewer", "--json"])
    assert made.exit_code == 0, made.output
    viewer = json.loads(made.output)
    assert viewer["role"] == "viewer" and viewer["operator"] is False
    operator = json.loads(roost.invoke(app, ["keys", "create", "--operator", "--json"]).output)
    assert operator["operator"] is True and operator["tenant"] == "default"
    wrong = roost.invoke(app, ["keys", "create", "--role", "admin"])
    assert wrong.exit_code == 2 and "owner, member, viewer" in wrong.output
    assert roost.invoke(app, ["keys", "role", viewer["id"], "member"]).exit_code == 0
    listed = json.loads(roost.invoke(app, ["keys", "list", "--tenant", "acme", "--json"]).output)
    assert [(k["id"], k["role"]) for k in listed] == [(viewer["id"], "member")]
    rotated = json.loads(roost.invoke(app, ["keys", "rotate", viewer["id"], "--json"]).output)
    assert rotated["id"] == viewer["id"] and rotated["key"] != viewer["key"]
