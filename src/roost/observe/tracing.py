"""OpenTelemetry tracing: spans go to an OTLP endpoint when one is configured, and are
always kept in a bounded in-process buffer that tests and the admin UI can read."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from roost.config import TracingSettings


class RecentSpans(SpanExporter):
    """Keeps the last ``max_spans`` finished spans in memory (oldest dropped first)."""

    def __init__(self, max_spans: int = 10_000) -> None:
        self._spans: deque[ReadableSpan] = deque(maxlen=max_spans)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._spans.extend(spans)
        return SpanExportResult.SUCCESS

    def spans(self) -> list[ReadableSpan]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def shutdown(self) -> None:
        self.clear()


RECENT_SPANS = RecentSpans()
_configured = False
_lock = threading.Lock()


def configure_tracing(settings: TracingSettings) -> None:
    """Install Roost's tracer provider once per process; later calls change nothing."""
    global _configured
    with _lock:
        if _configured:
            return
        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        provider.add_span_processor(SimpleSpanProcessor(RECENT_SPANS))
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = settings.otlp_endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        _configured = True


def get_tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
