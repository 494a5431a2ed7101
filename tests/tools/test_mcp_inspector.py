"""Interop: the official MCP Inspector CLI lists and calls Roost's tools at ``/mcp``.

``make test-services`` installs the Inspector under ``.venv/node``; it runs offline after.
The app is served by uvicorn in a thread of this process, so only the Inspector starts anew.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from roost.config import load_settings
from roost.server.app import create_app

REPO = Path(__file__).resolve().parents[2]
INSPECTOR = REPO / ".venv" / "node" / "node_modules" / ".bin" / "mcp-inspector"
KEY = "inspector-test-key-0123456789abcdef"


class _Server(uvicorn.Server):
    """uvicorn that says when it is listening, so the test waits on an event, not a clock."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@pytest.fixture
def mcp_url(roost_home: Path) -> Iterator[str]:
    settings = load_settings(
        env={"ROOST_HOME": str(roost_home), "ROOST_API_KEY": KEY, "ROOST_ENGINE__ENABLED": "false"}
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = _Server(uvicorn.Config(create_app(settings), log_config=None, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve([listener])), daemon=True)
    thread.start()
    try:
        assert server.ready.wait(60), "server did not start"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


def inspect(url: str, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    assert INSPECTOR.exists(), "MCP Inspector missing: run `make test-services`"
    auth = ["--header", f"Authorization: Bearer {key}"] if key else []
    return subprocess.run(
        [str(INSPECTOR), "--cli", url, "--transport", "http", *auth, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def result_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr + done.stdout
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


@pytest.mark.slow
def test_inspector_lists_and_calls_roost_tools(mcp_url: str) -> None:
    listed = result_of(inspect(mcp_url, "--method", "tools/list"))
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert tools["git_push"]["annotations"]["destructiveHint"] is True
    assert tools["read_file"]["inputSchema"]["required"] == ["path"]
    called = result_of(
        inspect(
            mcp_url, "--method", "tools/call", "--tool-name", "write_file",
            "--tool-arg", "path=from-inspector.txt", "--tool-arg", "content=hello",
        )
    )  # fmt: skip
    assert called["isError"] is False
    assert called["structuredContent"] == {"path": "from-inspector.txt", "bytes_written": 5}
    refused = result_of(
        inspect(
            mcp_url, "--method", "tools/call", "--tool-name", "read_file",
            "--tool-arg", "path=../../etc/passwd",
        )
    )  # fmt: skip
    assert refused["isError"] is True and "path_refused" in refused["content"][0]["text"]
    assert inspect(mcp_url, "--method", "tools/list", key=None).returncode != 0
