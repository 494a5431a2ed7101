"""``GET /v1/tools``, ``POST /v1/tools/{name}/execute``, and the tool layer's HTTP wiring.

``router`` also carries the approvals API and the ``/mcp`` endpoint; the tool service
itself is the kernel's (``app.state.tools``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from roost.errors import NotFound
from roost.server import approvals, mcp
from roost.tools.executor import ToolCall
from roost.tools.permissions import Caller

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
