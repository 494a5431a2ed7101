"""OpenTelemetry tracing: spans go to an OTLP endpoint when one is configured, to the
trace store of every open kernel (:class:`SpanRouting`), and to a bounded in-process
buffer that tests can read."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
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


class SpanSink(Protocol):
    def offer(self, span: ReadableSpan) -> None: ...


# Copied from a span to the children it starts in this process, so that a model call deep
# inside a run is filed under the run's tenant, run, thread and agent.
INHERITED_ATTRIBUTES = (
    "roost.tenant_id",
    "roost.run_id",
    "gen_ai.conversation.id",
    "gen_ai.agent.name",
)


# Set on a span that must not reach the trace store: reading traces is not itself traced,
# or every look at the store would add to it.
UNSTORED = "roost.trace.unstored"


class SpanRouting(SpanProcessor):
    """Fills inherited attributes at span start and hands finished spans of a tenant to
    the attached sinks (each open kernel's trace writer).

    Both hooks run on the hot path of every span, so they do dictionary work only.
    """

    def __init__(self) -> None:
        self._sinks: tuple[SpanSink, ...] = ()
        self._lock = threading.Lock()

    def attach(self, sink: SpanSink) -> None:
        with self._lock:
            self._sinks = (*self._sinks, sink)

    def detach(self, sink: SpanSink) -> None:
        with self._lock:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        parent: Any = trace.get_current_span(parent_context)
        inherited = getattr(parent, "attributes", None)  # None for remote parents
        if not inherited:
            return
        own = span.attributes or {}
        for key in INHERITED_ATTRIBUTES:
            value = inherited.get(key)
            if value is not None and key not in own:
                span.set_attribute(key, value)

    def on_end(self, span: ReadableSpan) -> None:
        sinks = self._sinks
        attributes = span.attributes
        if sinks and attributes and "roost.tenant_id" in attributes:
            if attributes.get(UNSTORED) is True:
                return
            for sink in sinks:
                sink.offer(span)

    def shutdown(self) -> None:
        with self._lock:
            self._sinks = ()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


RECENT_SPANS = RecentSpans()
SPAN_ROUTING = SpanRouting()
# Whether model-call spans may carry message content for a tenant; the kernel installs
# its tenants' policy. Checked before content is serialised, so a tenant that does not
# record content costs nothing for it.
content_allowed: Callable[[str], bool] = lambda _tenant_id: False  # noqa: E731


def set_content_policy(policy: Callable[[str], bool]) -> None:
    global content_allowed
    content_allowed = policy


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
        provider.add_span_processor(SPAN_ROUTING)
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
