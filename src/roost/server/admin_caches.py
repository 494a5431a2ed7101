"""``/admin/caches``: list, drop, offload and pre-load the per-session KV caches of the engine."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Query, Request, Response

from roost.errors import NotFound
from roost.server.admin_auth import require_admin

router = APIRouter(prefix="/admin/caches", tags=["admin"], dependencies=[Depends(require_admin)])


class _SessionCacheEngine(Protocol):
    def session_caches(self) -> list[Any]: ...
    def delete_session_cache(self, cache_id: str) -> Any: ...
    def offload_session_caches(self) -> Any: ...
    def warm_session_cache(self, cache_id: str) -> Any: ...


async def _engine(request: Request) -> _SessionCacheEngine:
    service = await request.app.state.inference.ready_service()
    engine: _SessionCacheEngine = service.engine
    return engine


@router.get("")
async def list_caches(
    request: Request,
    tenant: str | None = Query(None, description="Only this tenant's sessions (tenant id)"),
) -> dict[str, Any]:
    """Every session cache: tier (hot, warm, cold), tokens, bytes, last use."""
    engine = await _engine(request)
    rows = [dataclasses.asdict(info) for info in engine.session_caches()]
    if tenant is not None:
        rows = [row for row in rows if row["tenant_id"] == tenant]
    rows.sort(key=lambda row: row["last_used_ms"], reverse=True)
    totals = {tier: {"sessions": 0, "bytes": 0} for tier in ("hot", "warm", "cold")}
    for row in rows:
        totals[row["tier"]]["sessions"] += 1
        totals[row["tier"]]["bytes"] += row["nbytes"]
    return {"object": "list", "data": rows, "totals": totals}


@router.delete("/{cache_id}", status_code=204)
async def delete_cache(request: Request, cache_id: str) -> Response:
    """Forget one session's cache in every tier (its file too)."""
    engine = await _engine(request)
    if not await asyncio.wrap_future(engine.delete_session_cache(cache_id)):
        raise NotFound(f"no session cache {cache_id!r}", param="cache_id")
    return Response(status_code=204)


@router.post("/offload")
async def offload_caches(request: Request) -> dict[str, Any]:
    """Write every hot and warm cache to disk and free their memory; returns when saved."""
    engine = await _engine(request)
    await asyncio.wrap_future(engine.offload_session_caches())
    return await list_caches(request, tenant=None)


@router.post("/{cache_id}/warm")
async def warm_cache(request: Request, cache_id: str) -> dict[str, Any]:
    """Read a cold cache into memory ahead of the session's next request."""
    engine = await _engine(request)
    if not await asyncio.wrap_future(engine.warm_session_cache(cache_id)):
        raise NotFound(f"no session cache {cache_id!r}", param="cache_id")
    row = next((r for r in engine.session_caches() if r.id == cache_id), None)
    return dataclasses.asdict(row) if row is not None else {"id": cache_id, "tier": "gone"}
