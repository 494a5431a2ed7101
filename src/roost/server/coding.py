"""Seed 004's REST paths for the coding agent, as aliases over the same services.

GET  /tools           the caller's tools (as GET /v1/tools)
POST /tool/execute    {"tool", "arguments", "approval_id"?}: one call (as /v1/tools/{name}/execute)
POST /code/search     {"query", "k"?}: code search over the tenant's coder workspace
POST /execute, GET /session/{id} live in threads.py; ``{"agent": "coder"}`` runs the
bundled coding agent (registered for the tenant on first use) in that workspace.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from roost.coding.bundled import CODER
from roost.coding.code_knowledge import CodeKnowledge
from roost.coding.repo_index import index_for
from roost.errors import NotFound
from roost.tools.executor import ToolCall
from roost.tools.permissions import Caller

router = APIRouter(tags=["coding"])


class ToolExecuteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1, description="Tool name")
    arguments: dict[str, Any] = Field(default_factory=dict)
    approval_id: str | None = Field(None, description="Run the call an approval covers")
    call_id: str | None = None


class CodeSearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(8, ge=1, le=50)


@router.get("/tools")
async def list_tools(request: Request) -> dict[str, Any]:
    """Alias of ``GET /v1/tools``."""
    tools = await request.app.state.tools.executor.list_tools(
        Caller.from_principal(request.state.principal)
    )
    return {"object": "list", "data": [tool.describe() for tool in tools]}


@router.post("/tool/execute")
async def execute_tool(body: ToolExecuteBody, request: Request) -> dict[str, Any]:
    """Alias of ``POST /v1/tools/{name}/execute``: permissions, approvals, sandbox, audit."""
    call = ToolCall(body.tool, body.arguments, body.call_id, body.approval_id)
    result = await request.app.state.tools.executor.execute(
        Caller.from_principal(request.state.principal), call
    )
    if result.error_type == "unknown_tool":
        raise NotFound(result.error_message or f"no tool named {body.tool!r}", param="tool")
    return result.to_dict()


@router.post("/code/search")
async def code_search(body: CodeSearchBody, request: Request) -> dict[str, Any]:
    """Functions, classes and files of the coder's workspace that match the query, by its
    words and by meaning (the workspace's chunks are kept in a knowledge collection)."""
    principal = request.state.principal
    caller = Caller(tenant_id=principal.tenant_id, actor=principal.actor, agent_id=CODER)
    workspace = request.app.state.tools.executor.workspace_for(caller)
    # Parsing changed files is blocking work: off the event loop.
    index = await asyncio.to_thread(index_for, workspace.root)
    memory = getattr(request.app.state, "memory", None)
    kb = getattr(memory, "knowledge", None)
    if kb is None:  # no memory in this deployment: keyword search only
        hits = await asyncio.to_thread(index.search, body.query, body.k)
        kind = "ast+tree-sitter symbols, keyword"
    else:
        code = CodeKnowledge(kb, principal.tenant_id, workspace.root, CODER)
        await code.sync()  # incremental: the files git says changed since the last sync
        hits = await code.search(body.query, body.k)
        kind = "ast+tree-sitter symbols, keyword+semantic (reciprocal rank fusion)"
    return {"object": "list", "query": body.query, "data": hits,
            "num_files": len(index.files), "index": kind}  # fmt: skip
