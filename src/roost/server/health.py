"""Liveness, readiness and Prometheus metrics. Public: no API key needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from roost.errors import Overloaded
from roost.observe.metrics import render_latest

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(request: Request) -> dict[str, Any]:
    """Every backing store answers; 503 (problem+json) naming the store when one does not."""
    checks = await request.app.state.platform.check_ready()
    inference = getattr(request.app.state, "inference", None)
    if inference is not None and request.app.state.platform.settings.engine.enabled:
        checks["engine"] = inference.status()
        if checks["engine"] != "ok":
            raise Overloaded(f"the local model is not ready: {checks['engine']}", checks=checks)
    return {"status": "ok", "checks": checks}


@router.get("/metrics")
async def prometheus_metrics() -> Response:
    return Response(render_latest(), media_type="text/plain; version=0.0.4; charset=utf-8")
