"""One span as the trace store keeps it, made from an SDK span or an OTLP span.

The columns the query API filters on (run, thread, agent, model, tokens, cost) are lifted
out of the attributes here, once, when the span is written; the attributes themselves are
kept whole as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

# Attributes that carry message content (OTel GenAI semantic conventions); kept only for
# tenants whose policy allows it.
CONTENT_ATTRIBUTES = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
)
TENANT_ATTRIBUTE = "roost.tenant_id"
# Spans with these attributes are attributed to a run, a thread, an agent.
RUN_ATTRIBUTE = "roost.run_id"
THREAD_ATTRIBUTES = ("gen_ai.conversation.id", "roost.thread_id")
AGENT_ATTRIBUTES = ("gen_ai.agent.name", "gen_ai.agent.id")
# Fixed cost of a row beyond its text: ids, times, counts, index entries (measured by
# benchmarks/observe.py on SQLite; used to enforce byte budgets without asking the database).
ROW_OVERHEAD_BYTES = 160

CostOf = Callable[[str, str, int, int, int], int | None]
"""(provider, model, input tokens, output tokens, cached input tokens) -> nano-dollars."""


@dataclass(slots=True)
class SpanRecord:
    tenant_id: str
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_span_id: str | None
    name: str
    kind: str
    start_us: int
    duration_us: int
    status: str  # "ok", "error" or "unset"
    status_message: str | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    source: str = "roost"  # or "otlp": ingested from another application
    cost_nano: int | None = None

    def strip_content(self) -> None:
        """Remove prompts, completions and tool payloads from the attributes."""
        if not CONTENT_ATTRIBUTES.isdisjoint(self.attributes):
            self.attributes = {
                k: v for k, v in self.attributes.items() if k not in CONTENT_ATTRIBUTES
            }

    def mask_content(self, mask: Callable[[str, str], str]) -> None:
        """Pass every content attribute through ``mask(tenant_id, text)``."""
        for key in CONTENT_ATTRIBUTES.intersection(self.attributes):
            value = self.attributes[key]
            if isinstance(value, str):
                self.attributes[key] = mask(self.tenant_id, value)

    def price(self, cost_of: CostOf | None) -> None:
        """Fill ``cost_nano`` from an explicit attribute, else from the tokens and prices."""
        given = self.attributes.get("roost.cost_usd")
        if isinstance(given, int | float):
            self.cost_nano = round(given * 1e9)
            return
        model = _text(self.attributes.get("roost.llm.deployment")) or self.model
        if cost_of is None or model is None or self.input_tokens is None:
            return
        provider = str(self.attributes.get("gen_ai.provider.name", ""))
        self.cost_nano = cost_of(
            provider, model, self.input_tokens, self.output_tokens or 0, self.cached_tokens or 0
        )

    @property
    def operation(self) -> str | None:
        return _text(self.attributes.get("gen_ai.operation.name"))

    @property
    def run_id(self) -> str | None:
        return _text(self.attributes.get(RUN_ATTRIBUTE))

    @property
    def thread_id(self) -> str | None:
        return _first(self.attributes, THREAD_ATTRIBUTES)

    @property
    def agent(self) -> str | None:
        return _first(self.attributes, AGENT_ATTRIBUTES)

    @property
    def model(self) -> str | None:
        return _first(self.attributes, ("gen_ai.response.model", "gen_ai.request.model"))

    @property
    def input_tokens(self) -> int | None:
        return _int(self.attributes.get("gen_ai.usage.input_tokens"))

    @property
    def output_tokens(self) -> int | None:
        return _int(self.attributes.get("gen_ai.usage.output_tokens"))

    @property
    def cached_tokens(self) -> int | None:
        return _int(self.attributes.get("gen_ai.usage.cache_read.input_tokens"))

    def row(self) -> dict[str, Any]:
        """The ``trace_spans`` row (``size_bytes`` counts what the row stores)."""
        attributes = orjson.dumps(self.attributes).decode()
        events = orjson.dumps(self.events).decode() if self.events else None
        size = ROW_OVERHEAD_BYTES + len(attributes) + len(self.name) + len(events or "")
        return {
            "tenant_id": self.tenant_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "kind": self.kind,
            "start_us": self.start_us,
            "duration_us": self.duration_us,
            "status": self.status,
            "status_message": self.status_message,
            "operation": self.operation,
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "agent": self.agent,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_nano": self.cost_nano,
            "attributes": attributes,
            "events": events,
            "size_bytes": size + (len(self.status_message or "")),
            "source": self.source,
        }


def from_sdk_span(span: ReadableSpan) -> SpanRecord | None:
    """The record of a finished SDK span; None for spans of no tenant (health checks)."""
    attributes = _plain_attributes(span.attributes)
    tenant_id = attributes.get(TENANT_ATTRIBUTE)
    context = span.context
    if not isinstance(tenant_id, str) or context is None:
        return None
    start = span.start_time or 0
    end = span.end_time or start
    parent = span.parent
    return SpanRecord(
        tenant_id=tenant_id,
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_span_id=f"{parent.span_id:016x}" if parent is not None else None,
        name=span.name,
        kind=_KINDS.get(span.kind, "internal"),
        start_us=start // 1000,
        duration_us=max(0, end - start) // 1000,
        status=_STATUSES[span.status.status_code],
        status_message=span.status.description,
        attributes=attributes,
        events=[
            {
                "name": e.name,
                "time_us": e.timestamp // 1000,
                "attributes": _plain_attributes(e.attributes),
            }
            for e in span.events
        ],
    )


_KINDS = {
    SpanKind.INTERNAL: "internal",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
_STATUSES = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


def _plain_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """A dict of its own of the span's attributes, sequences as lists (JSON wants lists).

    The SDK hands out a read-only view of its ``BoundedAttributes``: iterating that goes
    through the Mapping ABC and takes a lock per key (~1.5 µs each, most of the writer's
    per-span conversion), while its ``copy()`` is one dict copy under one lock.
    """
    if not attributes:
        return {}
    copy = getattr(attributes, "copy", None)
    plain = copy() if callable(copy) else None
    if not isinstance(plain, dict):
        plain = dict(attributes)
    for key, value in plain.items():
        if type(value) is tuple:  # SDK attribute sequences are tuples
            plain[key] = list(value)
    return plain


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        found = _text(attributes.get(key))
        if found is not None:
            return found
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
