"""``GET /v1/tools``, ``POST /v1/tools/{name}/execute``, and the tool layer's HTTP wiring.

``router`` also carries the approvals API and the ``/mcp`` endpoint, and
:func:`tools_lifespan` opens the tool service and then the MCP session manager, so the app
registers the whole tool layer with one router and one hook.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from roost.errors import NotFound
from roost.observe.metrics import include_registry
from roost.server import approvals, mcp
from roost.tools import metrics as tool_metrics
from roost.tools.builtin.semantic import KnowledgeSearch, semantic_search_tool
from roost.tools.executor import ToolCall
from roost.tools.permissions import Caller
from roost.tools.service import ToolService
from roost.tools.toolsets import StaticToolset

router = APIRouter(tags=["tools"])
router.include_router(approvals.router)
router.include_router(mcp.router)


class ExecuteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arguments: dict[str, Any] = Field(default_factory=dict)
    approval_id: str | None = Field(None, description="Run the call an approval covers")
    call_id: str | None = None


@router.get("/v1/tools")
async def list_tools(request: Request) -> dict[str, Any]:
    """The tools the caller may use: name, description, risk level, JSON input schema."""
    tools = await request.app.state.tools.executor.list_tools(
        Caller.from_principal(request.state.principal)
    )
    return {"object": "list", "data": [tool.describe() for tool in tools]}


@router.post("/v1/tools/{name}/execute")
async def execute_tool(name: str, body: ExecuteBody, request: Request) -> dict[str, Any]:
    """Run one tool under the same permissions, sandbox and approvals as agent calls."""
    call = ToolCall(name, body.arguments, body.call_id, body.approval_id)
    result = await request.app.state.tools.executor.execute(
        Caller.from_principal(request.state.principal), call
    )
    if result.error_type == "unknown_tool":
        raise NotFound(result.error_message or f"no tool named {name!r}", param="name")
    return result.to_dict()


@asynccontextmanager
async def tools_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the tool service (tables, built-ins, configured MCP servers) for the app."""
    service = await ToolService.open(app.state.platform)
    include_registry(tool_metrics.REGISTRY)
    # The memory layer may start after this hook; look its knowledge base up per call.
    service.registry.add_shared(StaticToolset([semantic_search_tool(lambda: _knowledge(app))]))
    app.state.tools = service
    try:
        async with mcp.mcp_lifespan(app):
            yield
    finally:
        await service.close()


def _knowledge(app: FastAPI) -> KnowledgeSearch | None:
    memory = getattr(app.state, "memory", None)
    if memory is None or not hasattr(memory, "search_knowledge"):
        return None

    async def search(tenant_id: str, collection: str, query: str, k: int) -> list[dict[str, Any]]:
        hits = await memory.search_knowledge(tenant_id, collection, query, k=k)
        return [
            {"text": h.text, "uri": h.uri, "line_start": h.line_start, "line_end": h.line_end,
             "score": h.score}
            for h in hits
        ]  # fmt: skip

    return search
