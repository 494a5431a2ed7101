"""`roost serve` as a user runs it: first start, restart, and refusals with clear messages."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support.process import run_roost, start_server

KEY_PATTERN = re.compile(r"roost-[0-9a-f]{12}-[A-Za-z0-9_-]+")


@pytest.mark.slow
def test_first_start_prints_key_and_restart_keeps_it(roost_home: Path) -> None:
    env = {
        "ROOST_HOME": str(roost_home),
        "ROOST_LOGGING__FORMAT": "json",
        "ROOST_ENGINE__ENABLED": "false",  # the model-serving start is tested in tests/api
    }
    server = start_server(env)
    try:
        assert f"listening on http://127.0.0.1:{server.port}" in server.output
        assert str(roost_home) in server.output
        match = KEY_PATTERN.search(server.output)
        assert match, server.output
        key = match.group(0)
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        authed = httpx.get(f"{server.url}/v1/none", headers={"Authorization": f"Bearer {key}"})
        assert authed.status_code == 404
    finally:
        server.stop()
    # uvicorn re-raises SIGTERM after a graceful shutdown, so the exit code is the signal's.
    assert "Application shutdown complete" in server.output

    restarted = start_server(env)
    try:
        assert KEY_PATTERN.search(restarted.output) is None  # shown once, on first start only
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{restarted.url}/v1/none", headers=headers).status_code == 404
        assert httpx.get(f"{restarted.url}/v1/none").status_code == 401
    finally:
        restarted.stop()

    listed = run_roost("keys", "list", env=env)
    assert listed.returncode == 0
    assert key.split("-")[1] in listed.stdout
    assert "active" in listed.stdout


def test_malformed_config_exits_nonzero_listing_every_problem(roost_home: Path) -> None:
    config = roost_home / "roost.toml"
    config.write_text('[server]\nport = "eighty"\nbogus = 1\n[engine]\nblock_size = 0\n')
    result = run_roost("serve", env={"ROOST_HOME": str(roost_home), "ROOST_CONFIG": str(config)})
    assert result.returncode == 2
    for expected in ("server.port", "server.bogus", "unknown key", "engine.block_size"):
        assert expected in result.stderr, result.stderr


def test_unreachable_database_is_named_with_password_redacted(roost_home: Path) -> None:
    env = {
        "ROOST_HOME": str(roost_home),
        "ROOST_DATABASE_URL": "postgresql://roost:hunter2secret@127.0.0.1:1/roost",
        "ROOST_STORAGE__CONNECT_TIMEOUT_S": "2",
    }
    result = run_roost("serve", env=env)
    assert result.returncode == 1
    assert "postgresql://roost:***@127.0.0.1:1/roost" in result.stderr, result.stderr
    assert "hunter2secret" not in result.stderr + result.stdout
