"""The in-process local engine as a provider: no HTTP hop, and the caller's cache
identity reaches the engine so an agent's KV cache is found again.

Talks to :class:`roost.chat.ChatService` (the same service the server's OpenAI and
Anthropic endpoints use), obtained through an async getter because the engine loads
in the background after start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from roost.errors import InvalidRequest, RoostError
from roost.llm.base import NO_SETTINGS, RequestContext
from roost.llm.errors import ProviderRejected, ProviderUnavailable
from roost.llm.limits import ModelLimits
from roost.llm.messages import (
    Message,
    ModelSettings,
    Response,
    ResponseDone,
    StreamEvent,
    ToolDefinition,
)

ServiceGetter = Callable[[], Awaitable[Any]]  # → roost.chat.ChatService


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
        # The chat service speaks this layer's messages: only the answering id is ours.
        return dataclasses.replace(result.choices[0], model=self._model_id, id=result.id)

    async def request_stream(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]:
        service = await self._service()
        try:
            async for event in service.stream(to_chat_request(messages, settings, tools, context)):
                if isinstance(event, ResponseDone):
                    event = ResponseDone(dataclasses.replace(event.response, model=self._model_id))
                yield event
        except RoostError as exc:
            raise self._error(exc) from exc

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
    """Neutral messages and settings as a :class:`roost.chat.types.ChatRequest`."""
    from roost.chat import types as chat
    from roost.engine.sampling_params import SamplingParams

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
    schema = settings.output_schema
    return chat.ChatRequest(
        list(messages),
        SamplingParams(**sampling),
        tools=list(tools),
        tool_choice=tool_choice,
        response_format=chat.ResponseFormat(schema) if schema is not None else None,
        session_id=context.cache_identity if context else None,
        tenant_id=context.tenant_id if context else None,
    )
