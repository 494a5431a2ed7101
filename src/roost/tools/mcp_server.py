"""Roost's tools as an MCP server (official SDK, low-level ``Server``).

The same server object serves Streamable HTTP at ``/mcp`` (mounted in the FastAPI app,
behind Roost's API-key authentication) and stdio (``roost mcp serve --stdio``). Every
``tools/call`` goes through :class:`~roost.tools.executor.ToolExecutor`, so MCP clients get
exactly the permissions, sandbox, approvals and audit that agents get. A call that needs
approval answers with an error result naming the approval id; calling again with
``_meta["roost/approval_id"]`` set runs the approved call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext

from roost import __version__
from roost.tools.executor import ToolCall, ToolExecutor, ToolResult
from roost.tools.permissions import Caller

APPROVAL_META_KEY = "roost/approval_id"
# Resolves who is calling from the request context (HTTP: the authenticated principal).
CallerOf = Callable[[ServerRequestContext[Any]], Caller]


def build_mcp_server(executor: ToolExecutor, caller_of: CallerOf) -> Server[Any]:
    """An MCP server listing and calling the tools ``caller_of(ctx)`` may use."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = await executor.list_tools(caller_of(ctx))
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.input_schema,
                    annotations=types.ToolAnnotations(
                        read_only_hint=tool.risk.value == "read",
                        destructive_hint=tool.risk.value == "destructive",
                        idempotent_hint=tool.idempotent,
                        open_world_hint=tool.risk.value == "network",
                    ),
                )
                for tool in tools
            ]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        meta: dict[str, Any] = dict(params.meta or {})
        approval_id = meta.get(APPROVAL_META_KEY)
        result = await executor.execute(
            caller_of(ctx),
            ToolCall(params.name, params.arguments or {}, approval_id=approval_id),
        )
        return _as_mcp_result(result)

    return Server(
        "roost",
        version=__version__,
        instructions="Roost's tools: files, code analysis, commands, git, search, HTTP.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _as_mcp_result(result: ToolResult) -> types.CallToolResult:
    if result.status == "ok":
        output = result.output
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        structured = output if isinstance(output, dict) else None
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=structured
        )
    if result.status == "pending_approval":
        text = (
            f"approval required: approval id {result.approval_id}; once approved, call again"
            f' with _meta {{"{APPROVAL_META_KEY}": "{result.approval_id}"}}'
        )
    else:
        text = f"{result.error_type}: {result.error_message}"
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
