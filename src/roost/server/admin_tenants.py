"""``/admin/tenants``: create, list, read, disable and enable tenants; a tenant's budgets;
and ``/admin/whoami``. Who may call what is in ``roost.security.route_permissions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from roost.errors import Overloaded
from roost.security.principal import Principal
from roost.security.tenants import Tenant

router = APIRouter(prefix="/admin", tags=["admin"])


class TenantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "object": "tenant",
        "id": tenant.id,
        "name": tenant.name,
        "created_at": tenant.created_at,
        "disabled_at": tenant.disabled_at,
    }


async def _audit(request: Request, tenant_id: str, action: str, target: str) -> None:
    principal: Principal = request.state.principal
    await request.app.state.platform.audit.record(tenant_id, principal.actor, action, target=target)


@router.get("/whoami")
async def whoami(request: Request) -> dict[str, Any]:
    """The caller as the server sees it: tenant, role, operator flag, credential."""
    principal: Principal = request.state.principal
    return {
        "tenant_id": principal.tenant_id,
        "key_id": principal.key_id,
        "subject": principal.subject,
        "role": principal.role.value,
        "operator": principal.operator,
    }


@router.get("/tenants")
async def list_tenants(request: Request) -> dict[str, Any]:
    tenants = await request.app.state.platform.tenants.list()
    return {"object": "list", "data": [tenant_json(t) for t in tenants]}


@router.post("/tenants", status_code=201)
async def create_tenant(body: TenantCreate, request: Request) -> dict[str, Any]:
    tenant = await request.app.state.platform.tenants.create(body.name)
    await _audit(request, tenant.id, "tenant.create", tenant.id)
    return tenant_json(tenant)


@router.get("/tenants/{tenant_id}")
async def get_tenant(tenant_id: str, request: Request) -> dict[str, Any]:
    return tenant_json(await request.app.state.platform.tenants.get(tenant_id))


@router.post("/tenants/{tenant_id}/disable")
async def disable_tenant(tenant_id: str, request: Request) -> dict[str, Any]:
    """Disable a tenant: its keys are refused from the next request on, on every server."""
    tenant = await request.app.state.platform.tenants.set_disabled(tenant_id, True)
    await _audit(request, tenant.id, "tenant.disable", tenant.id)
    return tenant_json(tenant)


@router.post("/tenants/{tenant_id}/enable")
async def enable_tenant(tenant_id: str, request: Request) -> dict[str, Any]:
    tenant = await request.app.state.platform.tenants.set_disabled(tenant_id, False)
    await _audit(request, tenant.id, "tenant.enable", tenant.id)
    return tenant_json(tenant)


@router.get("/tenants/{tenant_id}/budgets")
async def tenant_budgets(tenant_id: str, request: Request) -> dict[str, Any]:
    """Spending against the budgets configured for the tenant (set in roost.toml)."""
    await request.app.state.platform.tenants.get(tenant_id)
    llm = getattr(request.app.state, "llm", None)
    if llm is None:
        raise Overloaded("the LLM service is not running in this process")
    budgets = llm.budgets
    data = await budgets.status(tenant_id) if budgets is not None else []
    return {"object": "list", "tenant_id": tenant_id, "data": data}
