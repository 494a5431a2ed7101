"""``GET /v1/audit``: the audit log, newest first, filtered, in cursor pages.

An owner reads its own tenant's records; an operator reads every tenant's (or one, with
``?tenant_id=``). Anyone else is refused; another tenant's id looks like no tenant at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from roost.errors import Forbidden, NotFound
from roost.security.audit import MAX_PAGE, AuditFilter, AuditLog
from roost.security.principal import Principal, Role

router = APIRouter(tags=["audit"])


def audit_scope(principal: Principal, tenant_id: str | None) -> str | None:
    """The tenant a listing may cover (None: all), or why not."""
    if principal.operator:
        return tenant_id
    if principal.role is not Role.OWNER:
        raise Forbidden(f"reading the audit log needs the owner role; this key is {principal.role}")
    if tenant_id is not None and tenant_id != principal.tenant_id:
        raise NotFound(f"tenant {tenant_id!r} not found", param="tenant_id")
    return principal.tenant_id


@router.get("/v1/audit")
async def list_audit(
    request: Request,
    tenant_id: str | None = None,
    action: str | None = Query(None, description="Exact, or a prefix ending in '*'"),
    actor: str | None = None,
    outcome: str | None = None,
    target: str | None = None,
    request_id: str | None = None,
    since: int | None = Query(None, ge=0, description="Epoch ms, inclusive"),
    until: int | None = Query(None, ge=0, description="Epoch ms, exclusive"),
    cursor: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
) -> dict[str, Any]:
    """Audit records the caller may read; ``next_cursor`` fetches the next page."""
    scope = audit_scope(request.state.principal, tenant_id)
    audit: AuditLog = request.app.state.platform.audit
    where = AuditFilter(scope, action, actor, outcome, target, request_id, since, until)
    page = await audit.query(where, limit=limit, cursor=cursor)
    return {
        "object": "list",
        "data": [event.to_dict() for event in page.events],
        "next_cursor": page.next_cursor,
        "has_more": page.next_cursor is not None,
    }
