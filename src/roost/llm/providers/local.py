"""The in-process local engine as a provider: no HTTP hop, and the caller's cache
identity reaches the engine so an agent's KV cache is found again.

Talks to :class:`roost.chat.ChatService` (the same service the server's OpenAI and
Anthropic endpoints use), obtained through an async getter because the engine loads
in the background after start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from roost.errors import InvalidRequest, RoostError
from roost.llm.base import NO_SETTINGS, RequestContext, StreamAccumulator
from roost.llm.errors import ProviderRejected, ProviderUnavailable
from roost.llm.limits import ModelLimits
from roost.llm.messages import (
    FinishReason,
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

ServiceGetter = Callable[[], Awaitable[Any]]  # → roost.chat.ChatService
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "cancelled": "error",
    "error": "error",
}


class LocalModel:
    """A model served by the local engine in this process."""

    def __init__(self, model_id: str, get_service: ServiceGetter) -> None:
        self._model_id = model_id
        self.get_service = get_service

    @property
    def model_id(self) -> str:
        return self._model_id

    async def limits(self) -> ModelLimits | None:
        """The loaded engine's context length and tokenizer (None while it is not loaded)."""
        try:
            engine = (await self.get_service()).engine
        except RoostError:
            return None
        tokenizer = engine.tokenizer

        def count_tokens(text: str) -> int:
            return len(tokenizer.encode(text))

        return ModelLimits(int(engine.context_length), count_tokens, exact=True)

    async def request(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> Response:
        service = await self._service()
        try:
            result = await service.complete(to_chat_request(messages, settings, tools, context))
        except RoostError as exc:
            raise self._error(exc) from exc
        choice = result.choices[0]
        parts: list[Part] = [TextPart(choice.text)] if choice.text else []
        parts += [ToolCallPart(c.id, c.name, c.arguments) for c in choice.tool_calls]
        usage = Usage(
            result.usage.prompt_tokens,
            result.usage.completion_tokens,
            result.usage.cached_prompt_tokens,
        )
        finish = _FINISH.get(choice.finish_reason, "stop")
        return Response(
            Message("assistant", tuple(parts)), finish, usage, self._model_id, result.id
        )

    async def request_stream(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]:
        from roost.chat import types as chat

        service = await self._service()
        acc = StreamAccumulator(self._model_id)
        finish: FinishReason = "stop"
        usage = Usage()
        try:
            async for event in service.stream(to_chat_request(messages, settings, tools, context)):
                delta: TextDelta | ToolCallDelta
                if isinstance(event, chat.TextDelta):
                    delta = TextDelta(event.text)
                elif isinstance(event, chat.ToolCallStarted):
                    delta = ToolCallDelta(event.call_index, event.id, event.name)
                elif isinstance(event, chat.ToolCallArgumentsDelta):
                    delta = ToolCallDelta(event.call_index, arguments=event.delta)
                elif isinstance(event, chat.ChoiceFinished):
                    if event.finish_reason == "error":
                        raise ProviderUnavailable(
                            f"{self._model_id}: generation failed: {event.error}",
                            deployment=self._model_id,
                        )
                    finish = _FINISH.get(event.finish_reason, "stop")
                    continue
                else:
                    u = event.usage
                    usage = Usage(u.prompt_tokens, u.completion_tokens, u.cached_prompt_tokens)
                    continue
                acc.add(delta)
                yield delta
        except RoostError as exc:
            if isinstance(exc, ProviderUnavailable):
                raise
            raise self._error(exc) from exc
        yield acc.finish(finish, usage)

    async def _service(self) -> Any:
        try:
            return await self.get_service()
        except RoostError as exc:  # still loading, disabled, or failed to load
            raise ProviderUnavailable(
                f"{self._model_id}: {exc.message}", deployment=self._model_id
            ) from exc

    def _error(self, exc: RoostError) -> Exception:
        if isinstance(exc, InvalidRequest):
            return ProviderRejected(
                f"{self._model_id}: {exc.message}", deployment=self._model_id, status_code=400
            )
        return ProviderUnavailable(f"{self._model_id}: {exc.message}", deployment=self._model_id)


def to_chat_request(
    messages: Sequence[Message],
    settings: ModelSettings,
    tools: Sequence[ToolDefinition],
    context: RequestContext | None,
) -> Any:
    """Neutral messages as a :class:`roost.chat.types.ChatRequest`."""
    from roost.chat import types as chat
    from roost.engine.sampling_params import SamplingParams

    wire: list[chat.Message] = []
    for message in messages:
        if message.role == "tool":
            for part in message.parts:
                if isinstance(part, ToolResultPart):
                    wire.append(
                        chat.Message("tool", part.content, tool_call_id=part.tool_call_id,
                                     name=part.name, is_error=part.is_error)
                    )  # fmt: skip
            continue
        calls = [chat.ToolCall(c.id, c.name, c.arguments) for c in message.tool_calls]
        wire.append(chat.Message(message.role, message.text, tool_calls=calls))
    sampling: dict[str, Any] = {"max_tokens": settings.max_tokens}
    if settings.temperature is not None:
        sampling["temperature"] = settings.temperature
    if settings.top_p is not None:
        sampling["top_p"] = settings.top_p
    if settings.seed is not None:
        sampling["seed"] = settings.seed
    if settings.stop:
        sampling["stop"] = tuple(settings.stop)
    choice = settings.tool_choice or "auto"
    tool_choice = (
        chat.ToolChoice(choice)  # type: ignore[arg-type]
        if choice in ("auto", "none", "required")
        else chat.ToolChoice("named", choice)
    )
    return chat.ChatRequest(
        wire,
        SamplingParams(**sampling),
        tools=[chat.ToolSpec(t.name, t.description, t.parameters) for t in tools],
        tool_choice=tool_choice,
        session_id=context.cache_identity if context else None,
        tenant_id=context.tenant_id if context else None,
    )
