"""Spans (OpenTelemetry GenAI semantic conventions) and Prometheus metrics of model calls."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import orjson
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

from roost.llm.base import RequestContext, split_model_id
from roost.llm.messages import (
    Message,
    ModelSettings,
    Part,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from roost.observe import tracing
from roost.observe.metrics import REGISTRY
from roost.observe.tracing import get_tracer

_tracer = get_tracer("roost.llm")

LLM_REQUESTS = Counter(
    "roost_llm_requests",
    "Model calls (attempts) by provider, model and outcome",
    ["provider", "model", "outcome"],
    registry=REGISTRY,
)
LLM_DURATION = Histogram(
    "roost_llm_request_duration_seconds",
    "Duration of model calls that succeeded, by provider and model",
    ["provider", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "roost_llm_tokens",
    "Tokens used by provider, model and kind (input, cached_input, output)",
    ["provider", "model", "kind"],
    registry=REGISTRY,
)
LLM_COST = Counter(
    "roost_llm_cost_usd", "Cost of model calls in USD by provider and model",
    ["provider", "model"], registry=REGISTRY,
)  # fmt: skip
LLM_RETRIES = Counter(
    "roost_llm_retries", "Retries and failovers by reason", ["model", "reason"], registry=REGISTRY
)
LLM_CACHE = Counter(
    "roost_llm_cache_lookups", "Response cache lookups by tier and result",
    ["tier", "result"], registry=REGISTRY,
)  # fmt: skip
LLM_CIRCUIT = Gauge(
    "roost_llm_circuit_open", "1 while a deployment's circuit is open or half-open",
    ["model"], registry=REGISTRY,
)  # fmt: skip
LLM_BUDGET_REJECTIONS = Counter(
    "roost_llm_budget_rejections", "Requests refused because a budget was exhausted",
    registry=REGISTRY,
)  # fmt: skip


@contextmanager
def chat_span(
    model_id: str,
    provider_kind: str,
    settings: ModelSettings,
    context: RequestContext | None,
    *,
    group: str | None = None,
    attempt: int = 0,
    messages: Sequence[Message] = (),
) -> Iterator[Span]:
    """A CLIENT span named ``chat {model}`` with the GenAI request attributes set; the
    input messages too when the tenant's tracing policy records content."""
    _, name = split_model_id(model_id)
    with _tracer.start_as_current_span(
        f"chat {name}", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
    ) as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", provider_kind)
        span.set_attribute("gen_ai.request.model", name)
        if settings.max_tokens is not None:
            span.set_attribute("gen_ai.request.max_tokens", settings.max_tokens)
        if settings.temperature is not None:
            span.set_attribute("gen_ai.request.temperature", settings.temperature)
        if settings.top_p is not None:
            span.set_attribute("gen_ai.request.top_p", settings.top_p)
        if group:
            span.set_attribute("roost.llm.group", group)
        span.set_attribute("roost.llm.attempt", attempt)
        span.set_attribute("roost.llm.deployment", model_id)  # prices are keyed by it
        if context is not None:
            span.set_attribute("roost.tenant_id", context.tenant_id)
            if context.agent_id:
                span.set_attribute("gen_ai.agent.id", context.agent_id)
            if messages and tracing.content_allowed(context.tenant_id):
                span.set_attribute("gen_ai.input.messages", messages_json(messages))
        yield span


def messages_json(messages: Sequence[Message]) -> str:
    """Messages as the GenAI conventions' ``gen_ai.*.messages`` JSON: role and parts."""
    return orjson.dumps(
        [{"role": m.role, "parts": [_part_json(p) for p in m.parts]} for m in messages]
    ).decode()


def _part_json(part: Part) -> dict[str, object]:
    if isinstance(part, TextPart):
        return {"type": "text", "content": part.text}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
    if isinstance(part, ToolResultPart):
        return {"type": "tool_call_response", "id": part.tool_call_id, "response": part.content}
    return {"type": part.kind}


def record_response(span: Span, response: Response, tenant_id: str | None = None) -> None:
    """Response attributes per the GenAI conventions (with the output message when
    ``tenant_id``'s tracing policy records content)."""
    _, name = split_model_id(response.model)
    span.set_attribute("gen_ai.response.model", name)
    if response.id:
        span.set_attribute("gen_ai.response.id", response.id)
    span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
    span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
    if response.usage.cached_input_tokens:
        span.set_attribute(
            "gen_ai.usage.cache_read.input_tokens", response.usage.cached_input_tokens
        )
    if tenant_id is not None and tracing.content_allowed(tenant_id):
        span.set_attribute("gen_ai.output.messages", messages_json([response.message]))


def record_error(span: Span, error: BaseException) -> None:
    span.set_attribute("error.type", getattr(error, "code", type(error).__name__))
    span.set_status(Status(StatusCode.ERROR, str(error)[:200]))


class _Children:
    """Labelled metric children per (provider, model): ``labels()`` takes a lock and
    hashes every call, which showed in the router's per-request overhead."""

    def __init__(self, provider: str, model: str) -> None:
        self.ok = LLM_REQUESTS.labels(provider, model, "ok")
        self.duration = LLM_DURATION.labels(provider, model)
        self.input = LLM_TOKENS.labels(provider, model, "input")
        self.output = LLM_TOKENS.labels(provider, model, "output")
        self.cached = LLM_TOKENS.labels(provider, model, "cached_input")
        self.cost = LLM_COST.labels(provider, model)


_children: dict[str, _Children] = {}


def record_metrics(response: Response, duration_s: float, cost_usd: float) -> None:
    """Count one successful call."""
    children = _children.get(response.model)
    if children is None:
        children = _Children(*split_model_id(response.model))
        _children[response.model] = children
    children.ok.inc()
    children.duration.observe(duration_s)
    usage = response.usage
    children.input.inc(usage.input_tokens)
    children.output.inc(usage.output_tokens)
    if usage.cached_input_tokens:
        children.cached.inc(usage.cached_input_tokens)
    if cost_usd:
        children.cost.inc(cost_usd)


def record_failure_metric(model_id: str, outcome: str) -> None:
    provider, model = split_model_id(model_id)
    LLM_REQUESTS.labels(provider, model, outcome).inc()
