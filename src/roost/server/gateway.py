"""Gateway mode: ``/v1/chat/completions`` and ``/v1/messages`` requests that name a model
group of the LLM router go through :class:`~roost.llm.service.LLMService` (failover,
retries, budgets, cache, usage and cost records, tracing) instead of the local engine.

Only names the operator configured (groups and routing policies) are served this way:
a caller naming a bare ``provider:model`` id would otherwise reach any upstream with
the operator's credentials.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TypeVar

from fastapi import FastAPI, Request

from roost.chat import ChatEvent, ChatRequest, ChatResult
from roost.errors import InvalidRequest
from roost.llm.base import RequestContext
from roost.llm.chat_bridge import messages_from_chat, settings_from_chat, tools_from_chat
from roost.llm.service import LLMService
from roost.security.principal import Principal
from roost.server.gateway_convert import chat_events, chat_result

T = TypeVar("T")


def gateway_service(request: Request, model: str) -> LLMService | None:
    """The LLM service when ``model`` is a configured group or policy, else None."""
    service: LLMService | None = getattr(request.app.state, "llm", None)
    if service is not None and service.router.is_served(model):
        return service
    return None


def gateway_models(app: FastAPI) -> list[str]:
    """The model names served through the gateway (for ``/v1/models`` and 404 messages)."""
    service: LLMService | None = getattr(app.state, "llm", None)
    return service.router.served_names() if service is not None else []


async def complete(
    service: LLMService, model: str, chat: ChatRequest, principal: Principal
) -> ChatResult:
    """One whole answer from group ``model``."""
    _refuse_unsupported(chat)
    response = await service.request(
        model,
        messages_from_chat(chat.messages),
        settings_from_chat(chat),
        tools_from_chat(chat.tools),
        context=_context(chat, principal),
    )
    return chat_result(response, model)


async def stream(
    service: LLMService, model: str, chat: ChatRequest, principal: Principal
) -> AsyncGenerator[ChatEvent, None]:
    """The answer as chat events. The first event is awaited here, so that refusals
    (budget, unknown group, every deployment down) become the HTTP status, not an
    error inside a stream that already answered 200."""
    _refuse_unsupported(chat)
    events = service.request_stream(
        model,
        messages_from_chat(chat.messages),
        settings_from_chat(chat),
        tools_from_chat(chat.tools),
        context=_context(chat, principal),
    )
    return await _primed(chat_events(events))


def _context(chat: ChatRequest, principal: Principal) -> RequestContext:
    return RequestContext(
        principal.tenant_id, key_id=principal.key_id, cache_identity=chat.session_id
    )


def _refuse_unsupported(chat: ChatRequest) -> None:
    """Features the local engine has and the provider-neutral layer does not carry."""
    if chat.n != 1:
        raise InvalidRequest("n > 1 is not supported for gateway model groups", param="n")
    if chat.sampling.logprobs:
        raise InvalidRequest(
            "logprobs are not supported for gateway model groups", param="logprobs"
        )
    if chat.response_format is not None:
        raise InvalidRequest(
            "structured output is not supported for gateway model groups",
            param="response_format",
        )


async def _primed(events: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
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
