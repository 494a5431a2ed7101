"""Gateway mode: a chat request naming a model group of the LLM router, answered through
:class:`~roost.llm.service.LLMService` (failover, retries, budgets, cache, usage and cost
records, tracing) instead of the local engine.

It answers the same :class:`~roost.chat.ChatTarget` calls as the local chat service, so
the HTTP adapters encode either the same way.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import TypeVar

from roost.chat.types import ChatRequest, ChatResult, ChatStream
from roost.errors import InvalidRequest
from roost.llm.base import RequestContext
from roost.llm.messages import (
    Message,
    ModelSettings,
    Response,
    ResponseDone,
    StreamEvent,
    ToolCallDelta,
    ToolCallPart,
)
from roost.llm.service import LLMService
from roost.storage.ids import new_id

T = TypeVar("T")


class GatewayChat:
    """Model group ``model`` of ``service``, asked on behalf of one caller."""

    def __init__(
        self, service: LLMService, model: str, *, tenant_id: str, key_id: str | None = None
    ) -> None:
        self.service = service
        self.model = model
        self.tenant_id = tenant_id
        self.key_id = key_id

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One whole answer, named after the group asked for (not the deployment)."""
        _refuse_unsupported(request)
        response = await self.service.request(
            self.model,
            request.messages,
            settings_of(request),
            request.tools,
            context=self._context(request),
        )
        response = dataclasses.replace(response, message=_with_call_arguments(response.message))
        return ChatResult(
            new_id("chatcmpl"), self.model, int(time.time()), [response], response.usage
        )

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        """The first event is awaited here, so that refusals (budget, unknown group, every
        deployment down) become the HTTP status, not an error inside a stream that already
        answered 200. Input tokens are known only at the end."""
        _refuse_unsupported(request)
        events = self.service.request_stream(
            self.model,
            request.messages,
            settings_of(request),
            request.tools,
            context=self._context(request),
        )
        return ChatStream(await _primed(_numbered_calls(events)), self.model)

    def count_tokens(self, request: ChatRequest) -> int:
        raise InvalidRequest(
            "count_tokens counts with the local model's tokenizer; it is not available for"
            " gateway model groups",
            param="model",
        )

    def token_decoder(self) -> Callable[[int], str] | None:
        return None  # no token ids come back from providers; logprobs are refused

    def _context(self, request: ChatRequest) -> RequestContext:
        return RequestContext(self.tenant_id, key_id=self.key_id, cache_identity=request.session_id)


def settings_of(request: ChatRequest) -> ModelSettings:
    """Sampling and tool choice of a chat request as provider-neutral settings."""
    sampling = request.sampling
    choice = request.tool_choice
    stop = sampling.stop
    # The adapters fill an unset temperature or top_p with 1.0, every provider's default;
    # sending it anyway would break providers that refuse both at once (recent Claude models).
    return ModelSettings(
        max_tokens=sampling.max_tokens,
        temperature=None if sampling.temperature == 1.0 else sampling.temperature,
        top_p=None if sampling.top_p == 1.0 else sampling.top_p,
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        seed=sampling.seed,
        tool_choice=choice.name if choice.mode == "named" else choice.mode,
    )


def _refuse_unsupported(request: ChatRequest) -> None:
    """Features the local engine has and the provider-neutral layer does not carry."""
    if request.n != 1:
        raise InvalidRequest("n > 1 is not supported for gateway model groups", param="n")
    if request.sampling.logprobs:
        raise InvalidRequest(
            "logprobs are not supported for gateway model groups", param="logprobs"
        )
    if request.response_format is not None:
        raise InvalidRequest(
            "structured output is not supported for gateway model groups",
            param="response_format",
        )


def _with_call_arguments(message: Message) -> Message:
    """Calls without arguments get ``{}``, so every client can parse them."""
    parts = tuple(
        dataclasses.replace(p, arguments=p.arguments or "{}") if isinstance(p, ToolCallPart) else p
        for p in message.parts
    )
    return dataclasses.replace(message, parts=parts)


async def _numbered_calls(
    events: AsyncGenerator[StreamEvent, None],
) -> AsyncGenerator[StreamEvent, None]:
    """Tool call deltas as the adapters expect them: calls numbered 0, 1, 2... in order
    of appearance (providers number them their own way, Anthropic by content block), the
    first delta of each call with its id and name, later ones with neither."""
    call_indexes: dict[int, int] = {}
    async with aclosing(events):  # closing this stream ends the upstream call
        async for event in events:
            if isinstance(event, ToolCallDelta):
                call_index = call_indexes.get(event.index)
                if call_index is None:
                    call_index = call_indexes[event.index] = len(call_indexes)
                    call_id = event.id or new_id("call")
                    yield ToolCallDelta(call_index, call_id, event.name or "", event.arguments)
                elif event.arguments:
                    yield ToolCallDelta(call_index, arguments=event.arguments)
            elif isinstance(event, ResponseDone):
                response: Response = event.response
                message = _with_call_arguments(response.message)
                yield ResponseDone(dataclasses.replace(response, message=message))
            else:
                yield event


async def _primed(events: AsyncGenerator[T, None]) -> AsyncIterator[T]:
    try:
        first = await anext(events)
    except StopAsyncIteration:
        return _replay([], events)
    except BaseException:
        await events.aclose()
        raise
    return _replay([first], events)


async def _replay(head: list[T], rest: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    try:
        for item in head:
            yield item
        async for item in rest:
            yield item
    finally:
        # A client that leaves ends the upstream call now (and settles its budget and usage).
        await rest.aclose()
