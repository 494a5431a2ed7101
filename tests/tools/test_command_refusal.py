"""Without a working jail, every tool that starts a process is refused, through every door:
the executor (agents, /v1/tools) and MCP ``tools/call`` (official SDK client underneath)."""

from __future__ import annotations

import httpx2
import pytest

from roost.tools import service as tool_service
from roost.tools.base import ToolFailure
from roost.tools.executor import ToolCall
from roost.tools.isolation import IsolationReport, detect_isolation
from roost.tools.mcp_client import McpToolset
from roost.tools.permissions import Caller
from roost.tools.service import ToolService
from tests.server.conftest import AppFactory

NO_JAIL = IsolationReport(None, None, False, ("no jail",), "bubblewrap (bwrap) is not installed")
COMMANDS = [
    ("run_command", {"argv": ["python3", "-c", "print(open('/proc/1/environ').read())"]}),
    ("run_tests", {}),
    ("search_text", {"pattern": "x"}),
    ("git_status", {}),
]


@pytest.fixture
def no_jail(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine's probe is what is replaced: as if bwrap were not installed here.
    monkeypatch.setattr(tool_service, "detect_isolation", lambda *_: NO_JAIL)


@pytest.mark.usefixtures("no_jail")
async def test_every_process_tool_is_refused_naming_the_fix(
    service: ToolService, caller: Caller
) -> None:
    for name, arguments in COMMANDS:
        result = await service.executor.execute(caller, ToolCall(name, arguments))
        assert result.status == "error" and result.error_type == "command_refused", name
        assert "apt-get install bubblewrap" in (result.error_message or ""), name
    written = await service.executor.execute(
        caller, ToolCall("write_file", {"path": "a.txt", "content": "files still work"})
    )
    assert written.status == "ok"


@pytest.mark.usefixtures("no_jail")
async def test_mcp_tools_call_is_refused_too(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (app, _):
        transport = httpx2.ASGITransport(app=app)
        toolset = McpToolset.http(
            "roost", "http://127.0.0.1/mcp", headers=auth, transport=transport
        )
        async with toolset:
            tools = {t.name: t for t in await toolset.list_tools()}
            with pytest.raises(ToolFailure, match="no working bubblewrap jail"):
                await tools["roost_run_command"].handler(None, {"argv": ["id", "-u"]})  # type: ignore[arg-type]


@pytest.mark.skipif(detect_isolation().jail is None, reason="needs the bubblewrap jail")
async def test_mcp_tools_call_runs_jailed_with_a_jail(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, _):
        transport = httpx2.ASGITransport(app=app)
        toolset = McpToolset.http(
            "roost", "http://127.0.0.1/mcp", headers=auth, transport=transport
        )
        async with toolset:
            tools = {t.name: t for t in await toolset.list_tools()}
            argv = ["python3", "-c", "import os; print(os.getuid(), sorted(os.listdir('/proc')))"]
            shown = await tools["roost_run_command"].handler(None, {"argv": argv})  # type: ignore[arg-type]
    assert shown["isolation"] == "bubblewrap" and shown["stdout"].startswith("1000 ")
    assert str(__import__("os").getpid()) + "'" not in shown["stdout"]
