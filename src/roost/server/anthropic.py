"""Anthropic-compatible endpoints: /v1/messages and count_tokens. The local engine answers
its own model's name; gateway model groups go through the LLM layer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from roost.chat import (
    ChatEvent,
    ChatResult,
    ChoiceFinished,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStarted,
    UsageReport,
)
from roost.chat.prompt import render_prompt
from roost.chat.tool_grammar import offered_tools
from roost.chat.types import ChatUsage, FinishReason
from roost.engine.sampling_params import SamplingParams
from roost.errors import InvalidRequest, RoostError
from roost.server import gateway
from roost.server.anthropic_schema import CountTokensRequest, MessagesRequest
from roost.server.error_format import error_body
from roost.server.inference import local_chat_service
from roost.server.sse import event_stream, sse_event
from roost.storage.ids import new_id

router = APIRouter(prefix="/v1", tags=["anthropic"])
SessionHeader = Annotated[str | None, Header(alias="x-roost-session", max_length=256)]
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_calls": "tool_use",
    "cancelled": "end_turn",
    "error": "end_turn",
}


@router.post("/messages", response_model=None)
async def create_message(
    body: MessagesRequest, request: Request, session: SessionHeader = None
) -> Response:
    principal = request.state.principal
    # The header names the session; else the end user of metadata.user_id does.
    session = session or (body.metadata.user_id if body.metadata else None)
    llm = gateway.gateway_service(request, body.model)
    if llm is not None:
        chat = body.to_chat_request(
            body.sampling(), tenant_id=principal.tenant_id, session_id=session
        )
        if body.stream:
            events = await gateway.stream(llm, body.model, chat, principal)
            # Input tokens are known only at the end; message_delta carries them.
            return event_stream(_events(events, body.model, 0))
        return JSONResponse(_message(await gateway.complete(llm, body.model, chat, principal)))
    service = await local_chat_service(request, body.model)
    chat = body.to_chat_request(body.sampling(), tenant_id=principal.tenant_id, session_id=session)
    if body.stream:
        prepared = service.prepare(chat)  # input errors answer 400 before the stream starts
        prompt_tokens = len(prepared.prompt_token_ids)
        return event_stream(_events(service.stream(chat), service.engine.model_name, prompt_tokens))
    return JSONResponse(_message(await service.complete(chat)))


def _message(result: ChatResult) -> dict[str, Any]:
    choice = result.choices[0]
    content: list[dict[str, Any]] = []
    if choice.text or not choice.tool_calls:
        content.append({"type": "text", "text": choice.text})
    content.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
        for c in choice.tool_calls
    )
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": result.model,
        "content": content,
        "stop_reason": _stop_reason(choice.finish_reason),
        "stop_sequence": choice.stop_sequence,
        "usage": _usage(result.usage),
    }


@router.post("/messages/count_tokens")
async def count_tokens(body: CountTokensRequest, request: Request) -> dict[str, int]:
    if gateway.gateway_service(request, body.model) is not None:
        raise InvalidRequest(
            "count_tokens counts with the local model's tokenizer; it is not available for"
            " gateway model groups",
            param="model",
        )
    service = await local_chat_service(request, body.model)
    chat = body.to_chat_request(
        SamplingParams(), tenant_id=request.state.principal.tenant_id, session_id=None
    )
    tools = offered_tools(chat)
    return {"input_tokens": len(render_prompt(service.engine, chat, offer_tools=bool(tools)))}


def _stop_reason(reason: FinishReason) -> str:
    return _STOP_REASONS.get(reason, "end_turn")


def _usage(usage: ChatUsage) -> dict[str, int]:
    # Anthropic counts cached input apart: input_tokens is what was computed afresh.
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_prompt_tokens,
        "cache_creation_input_tokens": 0,
    }


async def _events(
    events: AsyncIterator[ChatEvent], model: str, prompt_tokens: int
) -> AsyncIterator[bytes]:
    message_id = new_id("msg")
    yield sse_event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": 0},
            },
        },
    )
    yield sse_event("ping", {"type": "ping"})
    block = -1  # index of the open content block
    open_kind: str | None = None
    finish: ChoiceFinished | None = None

    def close() -> bytes:
        return sse_event("content_block_stop", {"type": "content_block_stop", "index": block})

    try:
        async for event in events:
            if isinstance(event, TextDelta) and event.text:
                if open_kind != "text":
                    if open_kind is not None:
                        yield close()
                    block += 1
                    open_kind = "text"
                    yield sse_event(
                        "content_block_start",
                        {"type": "content_block_start", "index": block,
                         "content_block": {"type": "text", "text": ""}},
                    )  # fmt: skip
                yield sse_event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": block,
                     "delta": {"type": "text_delta", "text": event.text}},
                )  # fmt: skip
            elif isinstance(event, ToolCallStarted):
                if open_kind is not None:
                    yield close()
                block += 1
                open_kind = "tool_use"
                yield sse_event(
                    "content_block_start",
                    {"type": "content_block_start", "index": block,
                     "content_block": {"type": "tool_use", "id": event.id, "name": event.name,
                                       "input": {}}},
                )  # fmt: skip
            elif isinstance(event, ToolCallArgumentsDelta):
                yield sse_event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": block,
                     "delta": {"type": "input_json_delta", "partial_json": event.delta}},
                )  # fmt: skip
            elif isinstance(event, ChoiceFinished):
                if event.finish_reason == "error":
                    raise RoostError(event.error or "generation failed")
                finish = event
            elif isinstance(event, UsageReport):
                if open_kind is not None:
                    yield close()
                    open_kind = None
                reason = finish.finish_reason if finish else "stop"
                yield sse_event(
                    "message_delta",
                    {"type": "message_delta",
                     "delta": {"stop_reason": _stop_reason(reason),
                               "stop_sequence": finish.stop_sequence if finish else None},
                     "usage": _usage(event.usage)},
                )  # fmt: skip
        yield sse_event("message_stop", {"type": "message_stop"})
    except RoostError as exc:
        _, _, body = error_body(exc, path="/v1/messages", request_id=None)
        yield sse_event("error", json.loads(body))
