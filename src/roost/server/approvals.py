"""``GET /v1/approvals`` and ``POST /v1/approvals/{id}``: humans decide on risky tool calls."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from roost.errors import Forbidden
from roost.server.agents import resume_after_approval
from roost.tools.permissions import Caller
from roost.tools.service import ToolService

router = APIRouter(tags=["approvals"])


def _service(request: Request) -> ToolService:
    service: ToolService = request.app.state.tools
    return service


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "deny", "edit"]
    reason: str | None = None
    arguments: dict[str, Any] | None = None


@router.get("/v1/approvals")
async def list_approvals(
    request: Request,
    status: Literal["pending", "approved", "denied"] | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """The tenant's approvals, newest first (``?status=pending`` for the queue)."""
    principal = request.state.principal
    approvals = await _service(request).approvals.list(
        principal.tenant_id, status=status, limit=max(1, min(limit, 1000))
    )
    return {"object": "list", "data": [a.to_dict() for a in approvals]}


@router.get("/v1/approvals/{approval_id}")
async def get_approval(approval_id: str, request: Request) -> dict[str, Any]:
    approval = await _service(request).approvals.get(request.state.principal.tenant_id, approval_id)
    return approval.to_dict()


@router.post("/v1/approvals/{approval_id}")
async def decide(approval_id: str, body: DecisionBody, request: Request) -> dict[str, Any]:
    """Approve, deny, or approve with edited arguments (validated against the tool)."""
    service = _service(request)
    caller = Caller.from_principal(request.state.principal)
    role = service.executor.permissions.role_of(caller)
    if not role.may_approve:
        raise Forbidden(f"role {role.name!r} may not decide approvals")
    approval = await service.executor.decide(
        caller.tenant_id,
        approval_id,
        body.decision,
        decided_by=caller.actor,
        decider_role=caller.role,
        reason=body.reason,
        arguments=body.arguments,
    )
    # An agent run paused on this approval continues once all of its approvals are decided.
    await resume_after_approval(request.app, caller.tenant_id, approval.run_id)
    return approval.to_dict()
