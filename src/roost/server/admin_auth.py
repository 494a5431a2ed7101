"""Who may use the platform's /admin endpoints: operators.

The route table (``roost.security.route_permissions``) already refuses everyone else
before a handler runs; this dependency repeats the check next to the code it guards, so
a router mounted without a table entry still fails closed. Being in the default tenant
no longer makes a key an operator: the ``operator`` flag on the key does.
"""

from __future__ import annotations

from fastapi import Request

from roost.errors import Forbidden
from roost.security.principal import Principal


def require_admin(request: Request) -> Principal:
    """FastAPI dependency: the caller, if it is a platform operator; else 403."""
    principal: Principal = request.state.principal
    if not principal.operator:
        raise Forbidden("this route needs the operator role", required="operator")
    return principal
