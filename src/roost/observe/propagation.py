"""W3C Trace Context across process boundaries: ``traceparent``/``tracestate`` read from
incoming requests and written onto outgoing ones (model providers, webhooks, run queue)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def extract(headers: Mapping[str, str]) -> Context | None:
    """The caller's trace context from ``traceparent`` (+ ``tracestate``); None without one
    (a malformed header counts as none: the request starts a new trace)."""
    if "traceparent" not in headers:
        return None
    context = _PROPAGATOR.extract(headers)
    return context if context else None


def extract_asgi(raw_headers: Iterable[tuple[bytes, bytes]]) -> Context | None:
    headers = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in raw_headers
        if k in (b"traceparent", b"tracestate")
    }
    return extract(headers)


def current_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span; empty outside any span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


async def inject_into(request: httpx.Request) -> None:
    """An httpx request hook: the current trace continues at the server called."""
    for name, value in current_headers().items():
        request.headers.setdefault(name, value)
