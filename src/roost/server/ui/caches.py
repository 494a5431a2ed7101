"""KV caches (operators): every cache kind of this server, and the engine's per-session
KV caches by tier with sizes and last use; warm, offload and clear them. The same rule
as ``/admin/caches`` decides who may (roost.server.admin_auth)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from roost.errors import InvalidRequest, NotFound
from roost.platform.cache_kinds import kernel_caches
from roost.platform.caches import KINDS
from roost.security.principal import Principal
from roost.server.ui.render import page
from roost.server.ui.session import (
    Posted,
    field,
    posted,
    require_operator,
    see_other,
    signed_in,
)

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
Acting = Annotated[Posted, Depends(posted)]


def _engine(request: Request) -> Any:
    """The local engine when it is loaded here; the page says so when it is not."""
    inference = getattr(request.app.state, "inference", None)
    return getattr(inference, "engine", None)


@router.get("/ui/caches")
async def caches_page(request: Request, principal: SignedIn) -> Response:
    require_operator(request)
    reports = await kernel_caches(request.app.state.kernel).stats()
    engine = _engine(request)
    sessions: list[dict[str, Any]] = []
    if engine is not None and hasattr(engine, "session_caches"):
        sessions = [dataclasses.asdict(info) for info in engine.session_caches()]
        sessions.sort(key=lambda row: row["last_used_ms"], reverse=True)
    return page(
        request, "caches.html", title="KV caches", section="caches",
        reports=[r.to_dict() for r in reports], sessions=sessions,
        engine_loaded=engine is not None, kinds=KINDS,
    )  # fmt: skip


@router.post("/ui/caches/session")
async def act_on_session_cache(request: Request, acting: Acting) -> Response:
    require_operator(request)
    engine = _engine(request)
    if engine is None:
        raise NotFound("the local engine is not loaded in this process")
    action, cache_id = field(acting.form, "action"), field(acting.form, "cache_id")
    if action == "offload":
        await asyncio.wrap_future(engine.offload_session_caches())
    elif action == "warm":
        if not await asyncio.wrap_future(engine.warm_session_cache(cache_id)):
            raise NotFound(f"no session cache {cache_id!r}")
    elif action == "clear":
        if not await asyncio.wrap_future(engine.delete_session_cache(cache_id)):
            raise NotFound(f"no session cache {cache_id!r}")
    else:
        raise InvalidRequest("action must be warm, clear or offload", param="action")
    return see_other("/ui/caches")


@router.post("/ui/caches/clear")
async def clear_kind(request: Request, acting: Acting) -> Response:
    require_operator(request)
    kind = field(acting.form, "kind") or None
    await kernel_caches(request.app.state.kernel).clear(kind, None)
    return see_other("/ui/caches")
