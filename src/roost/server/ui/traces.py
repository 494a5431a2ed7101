"""Traces: the tenant's traces newest first, and one trace as a waterfall of its spans
with timings, tokens, cost and (where the tenant's policy keeps it) content."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.errors import NotFound
from roost.observe.trace_store import TraceFilter
from roost.security.principal import Principal
from roost.server.traces import trace_service
from roost.server.ui.render import page
from roost.server.ui.session import signed_in

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
# Span attributes worth a column of their own in the waterfall (GenAI conventions).
TOKEN_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
MODEL_KEYS = ("gen_ai.request.model", "gen_ai.response.model")


@router.get("/ui/traces")
async def traces_page(
    request: Request,
    principal: SignedIn,
    run_id: Annotated[str | None, Query(max_length=200)] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=10)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    service = trace_service(request)
    await service.flush()
    where = TraceFilter(
        run_id=run_id or None,
        agent=agent or None,
        status=status if status in ("ok", "error") else None,
    )
    found = await service.store.list_traces(principal.tenant_id, where, limit=50, cursor=cursor)
    return page(
        request, "traces.html", title="Traces", section="traces", traces=found.traces,
        next_cursor=found.next_cursor, run_id=run_id or "", agent=agent or "",
        status=status or "",
    )  # fmt: skip


def waterfall(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Spans in tree order with their depth and their offset and width as percentages of
    the trace's duration (what the bars are drawn from)."""
    start = int(trace["start_time_us"])
    total_us = max(float(trace["duration_ms"]) * 1000, 1.0)
    rows: list[dict[str, Any]] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        attributes = span.get("attributes") or {}
        offset = (int(span["start_time_us"]) - start) / total_us * 100
        width = float(span["duration_ms"]) * 1000 / total_us * 100
        rows.append(
            {
                "span": span,
                "depth": min(depth, 12),
                "offset": round(max(0.0, min(offset, 100.0)), 2),
                "width": round(max(0.5, min(width, 100.0 - min(offset, 99.5))), 2),
                "model": next((attributes[k] for k in MODEL_KEYS if k in attributes), None),
                "tokens": [attributes.get(k) for k in TOKEN_KEYS],
                "attributes": attributes,
            }
        )
        for child in span.get("children") or []:
            walk(child, depth + 1)

    for root in trace.get("spans") or []:
        walk(root, 0)
    return rows


@router.get("/ui/traces/{trace_id}")
async def trace_page(trace_id: str, request: Request, principal: SignedIn) -> Response:
    service = trace_service(request)
    await service.flush()
    found = await service.store.get_trace(principal.tenant_id, trace_id)
    if found is None:
        raise NotFound(f"no trace {trace_id!r}")
    return page(
        request, "trace.html", title=f"Trace {trace_id}", section="traces", trace=found,
        rows=waterfall(found),
    )  # fmt: skip
