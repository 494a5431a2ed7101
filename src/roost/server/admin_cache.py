"""``/admin/cache``: every cache of this server by kind (the cache manager), and clearing
them by kind and tenant. Per-session KV caches one by one stay under ``/admin/caches``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from roost.platform.cache_kinds import kernel_caches
from roost.platform.caches import resolve_tenant
from roost.server.admin_auth import require_admin

router = APIRouter(prefix="/admin/cache", tags=["admin"], dependencies=[Depends(require_admin)])


class ClearBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(None, description="kv, prompt, response, embeddings or vectors")
    tenant: str | None = Field(None, description="Tenant name or id; default: every tenant")


@router.get("")
async def cache_stats(
    request: Request,
    kind: str | None = Query(None, description="One kind; default: all"),
    tenant: str | None = Query(None, description="Tenant name or id"),
) -> dict[str, Any]:
    """Entries, bytes, place and eviction policy of each cache kind."""
    tenant_id = await resolve_tenant(request.app.state.platform.tenants, tenant)
    reports = await kernel_caches(request.app.state.kernel).stats(kind, tenant_id)
    return {"object": "list", "data": [r.to_dict() for r in reports]}


@router.post("/clear")
async def clear_caches(body: ClearBody, request: Request) -> dict[str, Any]:
    """Drop the entries of one kind or all, of one tenant or all; reports what went."""
    tenant_id = await resolve_tenant(request.app.state.platform.tenants, body.tenant)
    reports = await kernel_caches(request.app.state.kernel).clear(body.kind, tenant_id)
    return {"object": "list", "data": [r.to_dict() for r in reports]}
