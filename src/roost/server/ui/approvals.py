"""The approvals inbox: pending tool calls with their exact arguments and risk; approve or
deny with a reason. Deciding goes through the same checks as ``POST /v1/approvals/{id}``
(the tenant role, then the tool policy's role), and the paused run resumes the same way."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.errors import Forbidden, InvalidRequest
from roost.security.principal import Principal, Role
from roost.server.agents import resume_after_approval
from roost.server.ui.render import page
from roost.server.ui.session import Posted, field, posted, require_role, see_other, signed_in
from roost.tools.permissions import Caller
from roost.tools.service import ToolService

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
Acting = Annotated[Posted, Depends(posted)]
Status = Literal["pending", "approved", "denied"]
STATUSES: tuple[Status, ...] = ("pending", "approved", "denied")


def _tools(request: Request) -> ToolService:
    service: ToolService = request.app.state.tools
    return service


@router.get("/ui/approvals")
async def approvals_page(
    request: Request,
    principal: SignedIn,
    status: Annotated[str, Query(max_length=20)] = "pending",
) -> Response:
    chosen = status if status in STATUSES else None
    approvals = await _tools(request).approvals.list(principal.tenant_id, status=chosen, limit=200)
    return page(
        request, "approvals.html", title="Approvals", section="approvals",
        approvals=[a.to_dict() for a in approvals], status=chosen or "",
        statuses=STATUSES, can_decide=principal.role.includes(Role.MEMBER),
    )  # fmt: skip


@router.post("/ui/approvals/{approval_id}")
async def decide(approval_id: str, request: Request, acting: Acting) -> Response:
    principal = acting.principal
    require_role(principal, Role.MEMBER, "decide approvals")
    chosen = field(acting.form, "decision")
    if chosen not in ("approve", "deny"):
        raise InvalidRequest("decision must be approve or deny", param="decision")
    decision: Literal["approve", "deny"] = "approve" if chosen == "approve" else "deny"
    service = _tools(request)
    caller = Caller.from_principal(principal)
    role = service.executor.permissions.role_of(caller)
    if not role.may_approve:
        raise Forbidden(f"role {role.name!r} may not decide approvals")
    approval = await service.executor.decide(
        caller.tenant_id, approval_id, decision, decided_by=caller.actor,
        reason=field(acting.form, "reason") or None,
    )  # fmt: skip
    await resume_after_approval(request.app, caller.tenant_id, approval.run_id)
    return see_other(f"/ui/runs/{approval.run_id}" if approval.run_id else "/ui/approvals")
