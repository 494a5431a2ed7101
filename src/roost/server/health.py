"""Liveness, readiness and Prometheus metrics. Public: no API key needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import Gauge
from sqlalchemy.exc import SQLAlchemyError

from roost.errors import Overloaded, StorageUnavailable
from roost.observe.metrics import REGISTRY, render_latest

router = APIRouter(tags=["health"])
# Read from the database at each scrape: the queue is shared by every process, so any
# server reports the whole deployment's depth (what a worker autoscaler scales on).
RUNS_QUEUED = Gauge(
    "roost_runs_queued", "Runs waiting for a worker, across the deployment", registry=REGISTRY
)


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
async def prometheus_metrics(request: Request) -> Response:
    platform = getattr(request.app.state, "platform", None)
    if platform is not None:
        try:
            row = await platform.database.fetch_one(
                "SELECT COUNT(*) AS n FROM agent_runs WHERE status = 'queued'"
            )
            RUNS_QUEUED.set(int(row["n"]) if row else 0)
        except (StorageUnavailable, SQLAlchemyError):
            pass  # /health/ready reports the database; metrics still answer
    return Response(render_latest(), media_type="text/plain; version=0.0.4; charset=utf-8")
