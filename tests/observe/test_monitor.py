"""``roost monitor --once --json`` against a real server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from roost.cli.main import app
from roost.config import load_settings
from roost.server.app import create_app
from tests.observe.test_otlp_ingest import genai_span, otlp_json
from tests.support.uvicorn_thread import ThreadedServer

KEY = "monitor-test-key-0123456789abcdef"


@pytest.fixture
def running(roost_home: Path) -> Iterator[str]:
    settings = load_settings(env={"ROOST_HOME": str(roost_home), "ROOST_API_KEY": KEY,
                                  "ROOST_ENGINE__ENABLED": "false"})  # fmt: skip
    server = ThreadedServer(create_app(settings)).start()
    try:
        yield server.url
    finally:
        server.stop()


def json_block(output: str) -> str:
    """The JSON document printed, without the log lines the in-process server wrote."""
    lines = output.splitlines()
    start, end = lines.index("{"), len(lines) - lines[::-1].index("}")
    return "\n".join(lines[start:end])


def test_once_json_reports_rates_errors_and_spend(running: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    failed = genai_span(status={"code": 2, "message": "upstream 500"})
    sent = httpx.post(f"{running}/v1/otel/v1/traces", json=otlp_json(failed), headers=headers)
    assert sent.status_code == 200, sent.text

    args = ["monitor", "--once", "--json", "--url", running, "--api-key", KEY, "--interval", "0.2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    shown = json.loads(json_block(result.stdout))
    # the first reading's own API calls fall between the two scrapes
    assert shown["requests_per_s"] > 0
    assert shown["memory_bytes"] > 0
    assert shown["spend_today_usd"] == 0.0
    assert [e["name"] for e in shown["recent_errors"]] == ["chat gpt-4o"]
    assert set(shown["engine"]) >= {"waiting", "running"}


def test_an_unreachable_server_exits_1(roost_home: Path) -> None:
    result = CliRunner().invoke(
        app, ["monitor", "--once", "--url", "http://127.0.0.1:9", "--api-key", KEY]
    )
    assert result.exit_code == 1 and "cannot reach" in result.output
