"""OpenAI Chat Completions through the official ``openai`` SDK.

Also the path for every OpenAI-compatible server (vLLM, llama.cpp, Ollama, Groq,
Together, another Roost): set ``base_url``. The SDK's own retries are off; the router
owns retrying.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai

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
    ToolResultPart,
    Usage,
)
from roost.llm.providers.errors import error_for_status, is_programming_error, unavailable

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIModel:
    """One model behind an OpenAI (or OpenAI-compatible) endpoint."""

    def __init__(
        self, model_id: str, name: str, client: openai.AsyncOpenAI, *, is_compatible: bool
    ) -> None:
        self._model_id = model_id
        self.name = name
        self.client = client
        # OpenAI's own API wants max_completion_tokens; compatible servers know max_tokens.
        self._max_tokens_key = "max_tokens" if is_compatible else "max_completion_tokens"

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
        params = self._params(messages, settings, tools, context)
        try:
            completion = await self.client.chat.completions.create(**params)
        except openai.APIError as exc:
            raise self._error(exc) from exc
        choice = completion.choices[0]
        parts: list[Part] = []
        if choice.message.content:
            parts.append(TextPart(choice.message.content))
        for call in choice.message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is not None:
                parts.append(ToolCallPart(call.id, function.name, function.arguments or ""))
        finish = _FINISH.get(choice.finish_reason or "stop", "stop")
        return Response(
            Message("assistant", tuple(parts)),
            finish,
            _usage(completion.usage),
            self._model_id,
            completion.id,
        )

    async def request_stream(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]:
        params = self._params(messages, settings, tools, context)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        acc = StreamAccumulator(self._model_id)
        finish: FinishReason = "stop"
        usage = Usage()
        response_id: str | None = None
        try:
            stream = await self.client.chat.completions.create(**params)
            async for chunk in stream:
                response_id = response_id or chunk.id
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if delta.content:
                        event: TextDelta | ToolCallDelta = TextDelta(delta.content)
                        acc.add(event)
                        yield event
                    for call in delta.tool_calls or ():
                        function = call.function
                        event = ToolCallDelta(
                            call.index,
                            call.id,
                            function.name if function else None,
                            (function.arguments or "") if function else "",
                        )
                        acc.add(event)
                        yield event
                    if choice.finish_reason:
                        finish = _FINISH.get(choice.finish_reason, "stop")
        except openai.APIError as exc:
            raise self._error(exc) from exc
        except Exception as exc:
            if is_programming_error(exc):
                raise
            # Transport errors and malformed SSE surface unwrapped while iterating.
            raise unavailable(exc, deployment=self._model_id) from exc
        yield acc.finish(finish, usage, response_id)

    def _params(
        self,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
        context: RequestContext | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.name, "messages": to_openai_messages(messages)}
        if settings.max_tokens is not None:
            params[self._max_tokens_key] = settings.max_tokens
        for key in ("temperature", "top_p", "seed"):
            value = getattr(settings, key)
            if value is not None:
                params[key] = value
        if settings.stop:
            params["stop"] = list(settings.stop)
        if tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in tools
            ]
            if settings.tool_choice:
                params["tool_choice"] = (
                    settings.tool_choice
                    if settings.tool_choice in ("auto", "none", "required")
                    else {"type": "function", "function": {"name": settings.tool_choice}}
                )
        if settings.timeout_s is not None:
            params["timeout"] = settings.timeout_s
        if context is not None and context.cache_identity:
            # Lets another Roost (or a server that reads `user`) keep this caller's KV cache.
            params["user"] = context.cache_identity
        return params

    def _error(self, exc: openai.APIError) -> Exception:
        secrets = (self.client.api_key,)
        if isinstance(exc, openai.APIStatusError):
            return error_for_status(
                exc.status_code,
                exc.message,
                deployment=self._model_id,
                headers=dict(exc.response.headers),
                secrets=secrets,
            )
        return unavailable(exc, deployment=self._model_id, secrets=secrets)


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral messages in Chat Completions shape."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            for part in message.parts:
                if isinstance(part, ToolResultPart):
                    wire.append(
                        {"role": "tool", "tool_call_id": part.tool_call_id, "content": part.content}
                    )
            continue
        if message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            calls = message.tool_calls
            if calls:
                entry["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments or "{}"},
                    }
                    for c in calls
                ]
            wire.append(entry)
            continue
        if any(isinstance(p, ImagePart) for p in message.parts):
            content: Any = [_content_part(p) for p in message.parts if _content_part(p)]
        else:
            content = message.text
        wire.append({"role": message.role, "content": content})
    return wire


def _content_part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": part.url}}
    return None


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=cached,
    )
