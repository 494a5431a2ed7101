"""Who may use the /admin endpoints: callers acting for the operator's own (default) tenant.

Admin endpoints act on the whole server (the loaded model, every tenant's KV caches), so a
key of an ordinary tenant gets 403. With authentication disabled every caller is the default
tenant, which is only safe on the operator's own machine (the server warns at start).
"""

from __future__ import annotations

from fastapi import Request

from roost.errors import Forbidden
from roost.security.principal import Principal


def require_admin(request: Request) -> Principal:
    """FastAPI dependency: the caller, if it acts for the default tenant; else 403."""
    principal: Principal = request.state.principal
    if principal.tenant_id != request.app.state.default_tenant_id:
        raise Forbidden("admin endpoints need a key of the default tenant")
    return principal
