"""``GET /v1/usage``: the caller's tenant's model usage and cost, plus the LLM
layer's lifespan hook that builds :class:`~roost.llm.service.LLMService` on
``app.state.llm``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request

from roost.errors import Overloaded
from roost.llm.base import Model
from roost.llm.cache import TextEmbedder
from roost.llm.providers import ProviderRegistry
from roost.llm.providers.local import LocalModel
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


def _local_models(app: FastAPI) -> Callable[[str], Model]:
    """``local:<name>`` models served by this process's engine (loaded in the background)."""

    async def chat_service() -> Any:
        inference = getattr(app.state, "inference", None)
        if inference is None:
            raise Overloaded("the local engine is not part of this process")
        return await inference.ready_service()

    return lambda name: LocalModel(f"local:{name}", chat_service)


@asynccontextmanager
async def llm_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the LLM service on ``app.state.llm`` (migrating its tables); close it at shutdown."""
    platform = app.state.platform
    settings = platform.settings.llm
    embedder: TextEmbedder | None = None
    if settings.cache.enabled and settings.cache.semantic:
        from roost.llm.embeddings import create_embedder

        embedder = create_embedder("minilm")
    registry = ProviderRegistry(settings.providers, local_factory=_local_models(app))
    service = await LLMService.open(
        settings, platform.database, redis=platform.redis, registry=registry, embedder=embedder
    )
    app.state.llm = service
    upkeep_task = asyncio.ensure_future(upkeep(service, settings.circuit.health_check_interval_s))
    log.info(
        "llm layer ready",
        groups=sorted(service.router.groups),
        cache=settings.cache.store if service.cache else "off",
        budgets=len(settings.budgets),
        prices=service.prices.version,
    )
    try:
        yield
    finally:
        upkeep_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upkeep_task
        app.state.llm = None
        await service.aclose()


# Reservations older than this belong to a process that died mid-call.
STALE_RESERVATION_MS = 3_600_000
UPKEEP_INTERVAL_S = 600.0


async def upkeep(
    service: LLMService,
    probe_interval_s: float | None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Probe open circuits (when configured) and release stale budget reservations."""
    interval = min(probe_interval_s or UPKEEP_INTERVAL_S, UPKEEP_INTERVAL_S)
    since_release = 0.0
    while True:
        await sleep(interval)
        try:
            if probe_interval_s:
                for name in list(service.router.groups):
                    await service.router.probe(name)
            since_release += interval
            if service.budgets is not None and since_release >= UPKEEP_INTERVAL_S:
                since_release = 0.0
                await service.budgets.release_stale(STALE_RESERVATION_MS)
        except Exception:
            log.exception("llm upkeep failed; trying again next round")
