"""``/admin/limits``: every tenant's effective limits, and setting a tenant's override
(the same store as ``roost limits``; every server applies it within
``limits.overrides_refresh_s``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from roost.config import LimitOverride
from roost.errors import Overloaded
from roost.limits.service import Limiter
from roost.server.admin_auth import require_admin

# Reading a tenant's own limits is its owner's right too (see route_permissions); the rest
# is the operator's.
router = APIRouter(prefix="/admin/limits", tags=["admin"])
OPERATOR_ONLY = [Depends(require_admin)]


def _limiter(request: Request) -> Limiter:
    limiter: Limiter | None = getattr(request.app.state, "limits", None)
    if limiter is None:
        raise Overloaded("limits are not running in this process")
    return limiter


async def _known_tenant(request: Request, tenant_id: str) -> None:
    await request.app.state.platform.tenants.get(tenant_id)  # 404 for an unknown tenant


async def _report(limiter: Limiter, tenant_id: str) -> dict[str, Any]:
    override = await limiter.overrides.get(tenant_id)
    return {
        "tenant_id": tenant_id,
        "effective": (await limiter.policy(tenant_id)).as_dict(),
        "override": override.model_dump(exclude_none=True) if override else None,
    }


@router.get("", dependencies=OPERATOR_ONLY)
async def list_limits(request: Request) -> dict[str, Any]:
    limiter = _limiter(request)
    tenants = await request.app.state.platform.tenants.list()
    return {"object": "list", "data": [await _report(limiter, t.id) for t in tenants]}


@router.get("/{tenant_id}")
async def get_limits(tenant_id: str, request: Request) -> dict[str, Any]:
    await _known_tenant(request, tenant_id)
    return await _report(_limiter(request), tenant_id)


@router.put("/{tenant_id}", dependencies=OPERATOR_ONLY)
async def put_limits(tenant_id: str, body: LimitOverride, request: Request) -> dict[str, Any]:
    """Replace the tenant's override; unset values inherit roost.toml, 0 is no limit."""
    await _known_tenant(request, tenant_id)
    limiter = _limiter(request)
    await limiter.set_override(tenant_id, body)
    principal = request.state.principal
    await request.app.state.platform.audit.record(
        tenant_id, principal.actor, "limits.set", target=tenant_id
    )
    return await _report(limiter, tenant_id)


@router.delete("/{tenant_id}", dependencies=OPERATOR_ONLY)
async def delete_limits(tenant_id: str, request: Request) -> dict[str, Any]:
    await _known_tenant(request, tenant_id)
    limiter = _limiter(request)
    removed = await limiter.overrides.delete(tenant_id)
    return {"removed": removed, **await _report(limiter, tenant_id)}
