"""A ``chat {model}`` span (OpenTelemetry GenAI conventions) around the local engine's
chat calls, like the router makes around remote ones, so that a chat answered by the
bundled model is a model-call span in its request's trace too.

A stream's span starts when the stream opens and ends when its last event has been
read (or the reader stops), so it times the whole answer, not just the first token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from roost.chat.types import ChatRequest, ChatResult, ChatStream, ChatTarget
from roost.llm.messages import ResponseDone, StreamEvent, Usage
from roost.llm.telemetry import messages_json
from roost.observe import tracing

PROVIDER = "roost"  # the local engine: no GenAI-conventions provider name fits better
_tracer = tracing.get_tracer("roost.chat")


class TracedChat:
    """Delegates to ``target``; every ``complete`` and ``open_stream`` is one span."""

    def __init__(self, target: ChatTarget, model: str) -> None:
        self.target = target
        self.model = model

    async def complete(self, request: ChatRequest) -> ChatResult:
        span = self._start(request)
        with trace.use_span(span, end_on_exit=True, record_exception=False,
                            set_status_on_exception=False):  # fmt: skip
            try:
                result = await self.target.complete(request)
            except Exception as exc:
                _failed(span, exc)
                raise
            _record(span, request, result.usage, result.model,
                    [r.finish_reason for r in result.choices], [r.message for r in result.choices])  # fmt: skip
            return result

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        span = self._start(request)
        try:
            with trace.use_span(span, end_on_exit=False):
                stream = await self.target.open_stream(request)
        except Exception as exc:
            _failed(span, exc)
            span.end()
            raise
        stream.events = self._watched(stream.events, span, request)
        return stream

    def count_tokens(self, request: ChatRequest) -> int:
        return self.target.count_tokens(request)

    def token_decoder(self) -> Callable[[int], str] | None:
        return self.target.token_decoder()

    def _start(self, request: ChatRequest) -> Span:
        span = _tracer.start_span(f"chat {self.model}", kind=SpanKind.CLIENT)
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", PROVIDER)
        span.set_attribute("gen_ai.request.model", self.model)
        sampling = request.sampling
        if sampling.max_tokens is not None:
            span.set_attribute("gen_ai.request.max_tokens", sampling.max_tokens)
        span.set_attribute("gen_ai.request.temperature", sampling.temperature)
        span.set_attribute("gen_ai.request.top_p", sampling.top_p)
        if request.session_id:
            span.set_attribute("roost.session_id", request.session_id)
        if request.tenant_id:
            span.set_attribute("roost.tenant_id", request.tenant_id)
            if tracing.content_allowed(request.tenant_id):
                span.set_attribute("gen_ai.input.messages", messages_json(request.messages))
        return span

    async def _watched(
        self, events: AsyncIterator[StreamEvent], span: Span, request: ChatRequest
    ) -> AsyncIterator[StreamEvent]:
        done: list[Any] = []
        try:
            async for event in events:
                if isinstance(event, ResponseDone):
                    done.append(event.response)
                yield event
        except Exception as exc:
            _failed(span, exc)
            raise
        finally:
            if done:
                usage = Usage(
                    max(r.usage.input_tokens for r in done),
                    sum(r.usage.output_tokens for r in done),
                    max(r.usage.cached_input_tokens for r in done),
                )
                _record(span, request, usage, done[0].model, [r.finish_reason for r in done],
                        [r.message for r in done])  # fmt: skip
            span.end()


def _record(
    span: Span,
    request: ChatRequest,
    usage: Usage,
    model: str,
    finish_reasons: list[str],
    messages: list[Any],
) -> None:
    span.set_attribute("gen_ai.response.model", model.removeprefix("local:"))
    span.set_attribute("gen_ai.response.finish_reasons", finish_reasons)
    span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    if usage.cached_input_tokens:
        span.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cached_input_tokens)
    if request.tenant_id and tracing.content_allowed(request.tenant_id):
        span.set_attribute("gen_ai.output.messages", messages_json(messages))


def _failed(span: Span, error: BaseException) -> None:
    span.set_attribute("error.type", getattr(error, "code", type(error).__name__))
    span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
