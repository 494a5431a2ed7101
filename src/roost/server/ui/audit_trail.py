"""Audit records of what people change through the UI.

The API's AuditMiddleware records calls whose principal it knows before the handler runs;
a UI form's principal comes from its session, resolved inside the route, so the UI's own
actions write their record here, after the change and before answering. An append that
fails answers 503 instead of "done", as the middleware does for the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from roost.errors import StorageUnavailable
from roost.observe.logging import get_logger
from roost.security.principal import Principal

log = get_logger("roost.ui")


async def record_ui_action(
    request: Request,
    principal: Principal,
    action: str,
    *,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    try:
        await request.app.state.platform.audit.record(
            principal.tenant_id, principal.actor, action, target=target, outcome="ok",
            role=principal.role.value,
            details={**(details or {}), "via": "ui", "path": request.url.path,
                     "operator": principal.operator},
        )  # fmt: skip
    except Exception as exc:
        log.exception("audit append failed", action=action)
        raise StorageUnavailable(
            "the audit log could not record this change; treat it as not confirmed"
        ) from exc
