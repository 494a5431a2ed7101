"""Anthropic Messages through the official ``anthropic`` SDK (SDK retries off)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic

from roost.llm.base import NO_SETTINGS, RequestContext, StreamAccumulator
from roost.llm.messages import (
    FinishReason,
    ImagePart,
    Message,
    ModelSettings,
    Part,
    Response,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolDefinition,
    Usage,
)
from roost.llm.providers.errors import error_for_status, is_programming_error, unavailable

# Anthropic requires max_tokens; this is what a request that sets none gets.
DEFAULT_MAX_TOKENS = 4096
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicModel:
    """One Claude model."""

    def __init__(self, model_id: str, name: str, client: anthropic.AsyncAnthropic) -> None:
        self._model_id = model_id
        self.name = name
        self.client = client

    @property
    def model_id(self) -> str:
        return self._model_id

    async def request(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> Response:
        try:
            reply = await self.client.messages.create(**self._params(messages, settings, tools))
        except anthropic.APIError as exc:
            raise self._error(exc) from exc
        parts: list[Part] = []
        for block in reply.content:
            if block.type == "text":
                parts.append(TextPart(block.text))
            elif block.type == "tool_use":
                parts.append(ToolCallPart(block.id, block.name, _json(block.input)))
        finish = _FINISH.get(reply.stop_reason or "end_turn", "stop")
        return Response(
            Message("assistant", tuple(parts)),
            finish,
            _usage(reply.usage),
            self._model_id,
            reply.id,
        )

    async def request_stream(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]:
        params = self._params(messages, settings, tools)
        acc = StreamAccumulator(self._model_id)
        finish: FinishReason = "stop"
        input_counts: dict[str, int] = {}
        output_tokens = 0
        response_id: str | None = None
        # content-block index → tool-call index, so tool deltas are numbered 0, 1, …
        tool_index: dict[int, int] = {}
        try:
            stream = await self.client.messages.create(**params, stream=True)
            async for event in stream:
                if event.type == "message_start":
                    response_id = event.message.id
                    _merge_input_counts(input_counts, event.message.usage)
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        tool_index[event.index] = len(tool_index)
                        delta: TextDelta | ToolCallDelta = ToolCallDelta(
                            tool_index[event.index], block.id, block.name
                        )
                        acc.add(delta)
                        yield delta
                elif event.type == "content_block_delta":
                    piece = event.delta
                    if piece.type == "text_delta":
                        delta = TextDelta(piece.text)
                    elif piece.type == "input_json_delta" and event.index in tool_index:
                        delta = ToolCallDelta(tool_index[event.index], arguments=piece.partial_json)
                    else:
                        continue
                    acc.add(delta)
                    yield delta
                elif event.type == "message_delta":
                    if event.delta.stop_reason:
                        finish = _FINISH.get(event.delta.stop_reason, "stop")
                    output_tokens = event.usage.output_tokens or output_tokens
                    _merge_input_counts(input_counts, event.usage)
        except anthropic.APIError as exc:
            raise self._error(exc) from exc
        except Exception as exc:
            if is_programming_error(exc):
                raise
            raise unavailable(exc, deployment=self._model_id) from exc
        read = input_counts.get("cache_read_input_tokens", 0)
        input_tokens = sum(input_counts.values())
        usage = Usage(input_tokens, output_tokens, read)
        yield acc.finish(finish, usage, response_id)

    def _params(
        self, messages: Sequence[Message], settings: ModelSettings, tools: Sequence[ToolDefinition]
    ) -> dict[str, Any]:
        system, wire = to_anthropic_messages(messages)
        params: dict[str, Any] = {
            "model": self.name,
            "messages": wire,
            "max_tokens": settings.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if system:
            params["system"] = system
        if settings.stop:
            params["stop_sequences"] = list(settings.stop)
        # Sampling knobs are not typed arguments in every SDK version; the wire accepts them.
        sampling = {
            k: v
            for k, v in (("temperature", settings.temperature), ("top_p", settings.top_p))
            if v is not None
        }
        if sampling:
            params["extra_body"] = sampling
        if tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in tools
            ]
            choice = settings.tool_choice
            if choice:
                params["tool_choice"] = (
                    {"type": {"required": "any"}.get(choice, choice)}
                    if choice in ("auto", "none", "required")
                    else {"type": "tool", "name": choice}
                )
        if settings.timeout_s is not None:
            params["timeout"] = settings.timeout_s
        return params

    def _error(self, exc: anthropic.APIError) -> Exception:
        secrets = (self.client.api_key or "",)
        if isinstance(exc, anthropic.APIStatusError):
            return error_for_status(
                exc.status_code,
                exc.message,
                deployment=self._model_id,
                headers=dict(exc.response.headers),
                secrets=secrets,
            )
        return unavailable(exc, deployment=self._model_id, secrets=secrets)


def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, messages) in Messages-API shape; consecutive same-role turns merge."""
    system: list[str] = []
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system.append(message.text)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [b for b in (_block(p) for p in message.parts) if b is not None]
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    return "\n\n".join(system), wire


def _block(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        if part.url.startswith("data:"):
            header, _, data = part.url.partition(",")
            media_type = part.media_type or header[5:].split(";")[0]
            source = {"type": "base64", "media_type": media_type, "data": data}
            return {"type": "image", "source": source}
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": part.id,
            "name": part.name,
            "input": part.parsed_arguments(),
        }
    return {
        "type": "tool_result",
        "tool_use_id": part.tool_call_id,
        "content": part.content,
        "is_error": part.is_error,
    }


def _usage(usage: Any) -> Usage:
    # Anthropic counts cache reads and writes apart from input_tokens; Roost's input includes them.
    read = getattr(usage, "cache_read_input_tokens", None) or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + read + written,
        output_tokens=usage.output_tokens or 0,
        cached_input_tokens=read,
    )


_INPUT_COUNTS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def _merge_input_counts(counts: dict[str, int], usage: Any) -> None:
    """Input counts of a stream: message_start has them, and a message_delta that repeats one
    has the final, cumulative value (servers may learn cache hits only as they go)."""
    for name in _INPUT_COUNTS:
        value = getattr(usage, name, None)
        if value is not None:
            counts[name] = value


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
