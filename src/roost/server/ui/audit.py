"""The audit log: an owner reads its tenant's records, an operator every tenant's (the
rule of ``GET /v1/audit``, :func:`roost.server.audit.audit_scope`); filters, cursor
pages, and verifying the hash chain of the records shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.errors import InvalidRequest
from roost.security.audit import AuditFilter, AuditLog
from roost.security.audit_verify import verify_audit
from roost.security.principal import Principal
from roost.server.audit import audit_scope
from roost.server.ui.render import page
from roost.server.ui.session import signed_in

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
PAGE_SIZE = 50
OUTCOMES = ("ok", "denied", "rejected", "error")
Text = Annotated[str | None, Query(max_length=400)]


def _epoch_ms(value: str | None, name: str, *, end_of_day: bool = False) -> int | None:
    """A date (``2026-12-07``) or date and time from the form, as epoch ms (UTC). A bare
    date as ``until`` means the end of that day: the form's "until" includes it."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} is not a date (YYYY-MM-DD[THH:MM])", param=name) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end_of_day and len(value) == 10:
        moment += timedelta(days=1)
    return int(moment.timestamp() * 1000)


@router.get("/ui/audit")
async def audit_page(
    request: Request,
    principal: SignedIn,
    tenant_id: Text = None,
    action: Text = None,
    actor: Text = None,
    outcome: Text = None,
    target: Text = None,
    since: Text = None,
    until: Text = None,
    cursor: Text = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
) -> Response:
    scope = audit_scope(principal, tenant_id or None)
    where = AuditFilter(
        scope, action or None, actor or None, outcome if outcome in OUTCOMES else None,
        target or None, None, _epoch_ms(since, "since"), _epoch_ms(until, "until", end_of_day=True),
    )  # fmt: skip
    audit: AuditLog = request.app.state.platform.audit
    found = await audit.query(where, limit=limit, cursor=cursor or None)
    filters = {
        "tenant_id": tenant_id or "", "action": action or "", "actor": actor or "",
        "outcome": outcome or "", "target": target or "", "since": since or "",
        "until": until or "",
    }  # fmt: skip
    kept: dict[str, str | int] = {k: v for k, v in filters.items() if v}
    if limit != PAGE_SIZE:
        kept["limit"] = limit
    return page(
        request, "audit.html", title="Audit log", section="audit", events=found.events,
        filters=filters, outcomes=OUTCOMES, operator=principal.operator,
        next_url=f"/ui/audit?{urlencode({**kept, 'cursor': found.next_cursor})}"
        if found.next_cursor is not None else None,
        first_url=f"/ui/audit?{urlencode(kept)}" if cursor else None,
        verify_url=f"/ui/audit/verify?{urlencode({'tenant_id': scope})}" if scope
        else "/ui/audit/verify",
    )  # fmt: skip


@router.get("/ui/audit/verify")
async def verify_page(request: Request, principal: SignedIn, tenant_id: Text = None) -> Response:
    """Recompute the hash chain of the tenant (every tenant, for an operator who names
    none) and show whether it adds up, or the first record where it breaks."""
    scope = audit_scope(principal, tenant_id or None)
    report = await verify_audit(request.app.state.platform.database, scope)
    return page(
        request, "audit_verify.html", title="Audit chain", section="audit",
        report=report.to_dict(), scope=scope,
    )  # fmt: skip
