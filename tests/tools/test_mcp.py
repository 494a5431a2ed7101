"""MCP both ways, with the official SDK as the peer: its server for our client, its client
for our server (over Streamable HTTP at /mcp and over stdio from `roost mcp serve`)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from roost.config import McpServerSettings
from roost.platform import Platform
from roost.tools.base import RiskLevel, ToolFailure
from roost.tools.executor import ToolCall
from roost.tools.mcp_client import McpToolset
from roost.tools.permissions import Caller
from roost.tools.service import ToolService
from tests.server.conftest import AppFactory

DEMO = [sys.executable, "-m", "tests.tools.mcp_servers.demo_server"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def demo() -> AsyncIterator[McpToolset]:
    async with McpToolset.stdio("demo", DEMO, env={"PYTHONPATH": str(REPO)}) as toolset:
        yield toolset


async def test_stdio_server_tools_resources_and_prompts(demo: McpToolset) -> None:
    tools = {t.name: t for t in await demo.list_tools()}
    assert set(tools) == {"demo_add", "demo_pid", "demo_explode"}
    assert tools["demo_add"].risk is RiskLevel.READ and tools["demo_add"].idempotent
    assert tools["demo_explode"].risk is RiskLevel.DESTRUCTIVE  # no hints: the spec's defaults
    assert tools["demo_add"].input_schema["required"] == ["a", "b"]
    assert await tools["demo_add"].handler(None, {"a": 2, "b": 3}) == {"result": 5}  # type: ignore[arg-type]
    with pytest.raises(ToolFailure, match="demo/explode"):
        await tools["demo_explode"].handler(None, {"reason": "x"})  # type: ignore[arg-type]
    assert [r["uri"] for r in await demo.list_resources()] == ["demo://readme"]
    assert (await demo.read_resource("demo://readme"))[0]["text"] == "hello from demo"
    assert [p["name"] for p in await demo.list_prompts()] == ["review"]
    prompt = await demo.get_prompt("review", {"language": "go"})
    assert prompt["messages"][0]["content"]["text"] == "Review this go code."


async def test_reconnects_after_the_server_dies(demo: McpToolset) -> None:
    tools = {t.name: t for t in await demo.list_tools()}
    first_pid = (await tools["demo_pid"].handler(None, {}))["result"]  # type: ignore[arg-type]
    os.kill(first_pid, signal.SIGKILL)
    # Read-only tool: the call that meets the dead connection is retried on a new one.
    assert await tools["demo_add"].handler(None, {"a": 1, "b": 1}) == {"result": 2}  # type: ignore[arg-type]
    assert demo.connections == 2
    second_pid = (await tools["demo_pid"].handler(None, {}))["result"]  # type: ignore[arg-type]
    assert second_pid != first_pid
    os.kill(second_pid, signal.SIGKILL)
    with pytest.raises(ToolFailure, match="not retried"):
        await tools["demo_explode"].handler(None, {"reason": "x"})  # type: ignore[arg-type]


async def test_mcp_tools_run_through_the_executor_under_policy(
    service: ToolService, caller: Caller, demo: McpToolset
) -> None:
    service.registry.add_for_tenant(caller.tenant_id, demo)
    added = await service.executor.execute(caller, ToolCall("demo_add", {"a": 20, "b": 22}))
    assert added.status == "ok" and added.output == {"result": 42}
    invalid = await service.executor.execute(caller, ToolCall("demo_add", {"a": "x"}))
    assert invalid.error_type == "invalid_arguments"
    risky = await service.executor.execute(caller, ToolCall("demo_explode", {"reason": "r"}))
    assert risky.status == "pending_approval"


async def test_roost_mcp_endpoint_lists_and_calls_tools(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, _):
        transport = httpx2.ASGITransport(app=app)
        toolset = McpToolset.http(
            "roost", "http://127.0.0.1/mcp", headers=auth, transport=transport
        )
        async with toolset:
            tools = {t.name: t for t in await toolset.list_tools()}
            assert (
                "roost_read_file" in tools and tools["roost_git_push"].risk is RiskLevel.DESTRUCTIVE
            )
            written = await tools["roost_write_file"].handler(
                None, {"path": "m.txt", "content": "mcp"}
            )  # type: ignore[arg-type]
            assert written == {"path": "m.txt", "bytes_written": 3}
            with pytest.raises(ToolFailure, match="path_refused"):
                await tools["roost_read_file"].handler(None, {"path": "../etc/passwd"})  # type: ignore[arg-type]
            with pytest.raises(ToolFailure, match="approval required"):
                await tools["roost_delete_file"].handler(None, {"path": "m.txt"})  # type: ignore[arg-type]
        unauthenticated = McpToolset.http("anon", "http://127.0.0.1/mcp", transport=transport)
        with pytest.raises(ToolFailure, match="cannot connect"):
            await unauthenticated.__aenter__()
        await unauthenticated.close()


async def test_roost_mcp_serve_stdio_with_the_sdk_client(roost_home: Path) -> None:
    env = {
        "ROOST_HOME": str(roost_home),
        "PATH": os.environ["PATH"],
        "ROOST_LOGGING__LEVEL": "warning",
    }
    roost = str(Path(sys.executable).parent / "roost")
    params = StdioServerParameters(command=roost, args=["mcp", "serve", "--stdio"], env=env)
    async with Client(params, mode="legacy") as client:
        listed = await client.list_tools()
        names = {tool.name for tool in listed.tools}
        assert {"read_file", "write_file", "run_command"} <= names
        result = await client.call_tool("write_file", {"path": "s.txt", "content": "stdio"})
        assert not result.is_error and result.structured_content == {
            "path": "s.txt",
            "bytes_written": 5,
        }
        read = await client.call_tool("read_file", {"path": "s.txt"})
        assert isinstance(read.content[0], types.TextContent) and "stdio" in read.content[0].text
    assert (roost_home / "workspaces").is_dir()


async def test_configured_servers_join_the_registry_and_a_dead_one_hides_nothing(
    platform: Platform, caller: Caller
) -> None:
    platform.settings.tools.mcp_servers = [
        McpServerSettings(name="demo", command=DEMO, env={"PYTHONPATH": str(REPO)}),
        McpServerSettings(name="down", command=[sys.executable, "-c", "raise SystemExit(3)"]),
    ]
    service = await ToolService.open(platform)
    try:
        names = {tool.name for tool in await service.executor.list_tools(caller)}
        assert {"demo_add", "read_file"} <= names
        assert not any(name.startswith("down_") for name in names)
        added = await service.executor.execute(caller, ToolCall("demo_add", {"a": 1, "b": 2}))
        assert added.output == {"result": 3}
    finally:
        await service.close()


async def test_an_agent_uses_builtin_and_mcp_tools_in_one_turn_under_its_capability(
    service: ToolService, caller: Caller, demo: McpToolset
) -> None:
    service.registry.add_for_tenant(caller.tenant_id, demo)
    token = service.minter.mint(
        tenant_id=caller.tenant_id,
        agent_id="coder",
        run_id="run-1",
        tools=("demo_add", "write_file", "read_file"),
        arguments={"path": "notes/*"},
    )
    agent = Caller(caller.tenant_id, "agent:coder", "coder", "run-1", token)
    turn = [
        ToolCall("write_file", {"path": "notes/a.md", "content": "hi"}, "c1"),
        ToolCall("demo_add", {"a": 40, "b": 2}, "c2"),
        ToolCall("demo_pid", {}, "c3"),  # not in the capability
        ToolCall("write_file", {"path": "src/x.py", "content": ""}, "c4"),  # outside its paths
    ]
    results = await service.executor.execute_many(agent, turn)
    assert [(r.call_id, r.status) for r in results] == [
        ("c1", "ok"),
        ("c2", "ok"),
        ("c3", "error"),
        ("c4", "error"),
    ]
    assert results[1].output == {"result": 42}
    assert results[2].error_type == results[3].error_type == "forbidden"
    workspace = service.executor.workspace_for(agent).root
    assert workspace.name == "coder" and (workspace / "notes/a.md").read_text() == "hi"
