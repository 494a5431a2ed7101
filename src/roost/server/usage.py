"""``GET /v1/usage``: the caller's tenant's model usage and cost, from the kernel's
:class:`~roost.llm.service.LLMService` (``app.state.llm``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request

from roost.errors import Overloaded
from roost.llm.service import LLMService
from roost.observe.logging import get_logger
from roost.security.principal import Principal
from roost.storage import now_ms

router = APIRouter(tags=["usage"])
log = get_logger("roost.llm")
DAY_MS = 86_400_000


@router.get("/v1/usage")
async def usage(
    request: Request,
    days: int = Query(30, ge=1, le=3660, description="Window ending now, when since is unset"),
    since: int | None = Query(None, ge=0, description="Start, epoch milliseconds"),
    until: int | None = Query(None, ge=0, description="End (exclusive), epoch milliseconds"),
    group_by: Literal["model", "day", "key", "agent"] = "model",
) -> dict[str, Any]:
    """Calls, tokens and cost of the caller's tenant, grouped, with its budgets."""
    principal: Principal = request.state.principal
    service = llm_service(request.app)
    assert service.usage is not None
    assert service.budgets is not None
    since_ms = since if since is not None else now_ms() - days * DAY_MS
    summary = await service.usage.summary(
        principal.tenant_id, since_ms=since_ms, until_ms=until, group_by=group_by
    )
    summary["budgets"] = await service.budgets.status(principal.tenant_id, principal.key_id)
    summary["price_table_version"] = service.prices.version
    return summary


def llm_service(app: FastAPI) -> LLMService:
    """The app's LLM service (the gateway endpoints call this too)."""
    service: LLMService | None = getattr(app.state, "llm", None)
    if service is None:
        raise Overloaded("the LLM layer is not running in this process")
    return service
