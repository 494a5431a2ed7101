"""Trace endpoints: ``GET /v1/traces`` (filtered, cursor-paginated), ``GET
/v1/traces/{trace_id}`` (the span tree) and OTLP/HTTP ingestion at ``/v1/otel/v1/traces``,
all on the kernel's trace service and always for the caller's tenant alone."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from opentelemetry import trace

from roost.errors import NotFound, Overloaded
from roost.observe.otlp_ingest import decode_body, parse_payload, to_records
from roost.observe.trace_service import TraceService
from roost.observe.trace_store import TraceFilter
from roost.observe.tracing import UNSTORED
from roost.security.principal import Principal
from roost.server.input_hygiene import check_json

router = APIRouter(tags=["traces"])


def trace_service(request: Request) -> TraceService:
    trace.get_current_span().set_attribute(UNSTORED, True)
    kernel = getattr(request.app.state, "kernel", None)
    service: TraceService | None = getattr(kernel, "traces", None)
    if service is None:
        raise Overloaded("the trace store is off in this process (tracing.store = false)")
    return service


@router.get("/v1/traces")
async def list_traces(
    request: Request,
    since: int | None = Query(None, ge=0, description="Traces starting at or after (epoch ms)"),
    until: int | None = Query(None, ge=0, description="Traces starting before (epoch ms)"),
    run_id: str | None = None,
    thread_id: str | None = None,
    agent: str | None = None,
    model: str | None = Query(None, description="A model any span of the trace called"),
    status: Literal["ok", "error"] | None = None,
    min_latency_ms: float | None = Query(None, ge=0),
    min_cost_usd: float | None = Query(None, ge=0),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> dict[str, Any]:
    """The caller's traces, newest first; pass ``next_cursor`` back as ``cursor``."""
    principal: Principal = request.state.principal
    service = trace_service(request)
    await service.flush()  # what this process recorded is visible at once
    where = TraceFilter(
        since_us=None if since is None else since * 1000,
        until_us=None if until is None else until * 1000,
        run_id=run_id,
        thread_id=thread_id,
        agent=agent,
        model=model,
        status=status,
        min_latency_ms=min_latency_ms,
        min_cost_usd=min_cost_usd,
    )
    page = await service.store.list_traces(principal.tenant_id, where, limit=limit, cursor=cursor)
    return {"object": "list", "data": page.traces, "next_cursor": page.next_cursor}


@router.get("/v1/traces/{trace_id}")
async def get_trace(request: Request, trace_id: str) -> dict[str, Any]:
    """One trace: its summary and its spans as a tree (``spans`` are the roots)."""
    principal: Principal = request.state.principal
    service = trace_service(request)
    await service.flush()
    found = await service.store.get_trace(principal.tenant_id, trace_id)
    if found is None:
        # Another tenant's trace is "not found" too: its existence is not disclosed.
        raise NotFound(f"no trace {trace_id!r}")
    return found


@router.post("/v1/otel/v1/traces")
async def ingest_otlp(request: Request) -> Response:
    """OTLP/HTTP export (JSON or protobuf, optionally gzip) into the caller's traces."""
    principal: Principal = request.state.principal
    service = trace_service(request)
    settings = service.policies.settings
    body = decode_body(
        await request.body(), request.headers.get("content-encoding"), settings.max_ingest_bytes
    )
    content_type = request.headers.get("content-type")
    if not (content_type or "").startswith("application/x-protobuf"):
        check_json(body)  # inflated here, so the door's JSON rules apply now
    records = to_records(parse_payload(body, content_type), principal.tenant_id)
    keep_content = service.policies.records_content(principal.tenant_id)
    for record in records:
        if not keep_content:
            record.strip_content()
        record.price(service.writer.cost_of)
    await service.store.write(records, deduplicate=True)
    if (content_type or "").startswith("application/x-protobuf"):
        # An empty ExportTraceServiceResponse encodes to zero bytes.
        return Response(b"", media_type="application/x-protobuf")
    return Response(b"{}", media_type="application/json")
