"""Anthropic-compatible endpoints: /v1/messages and count_tokens. The local engine answers
its own model's name; gateway model groups go through the LLM layer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from roost.chat import ChatResult
from roost.engine.sampling_params import SamplingParams
from roost.errors import RoostError
from roost.llm.messages import (
    Response as ModelResponse,
)
from roost.llm.messages import (
    ResponseDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from roost.server.anthropic_schema import CountTokensRequest, MessagesRequest
from roost.server.chat_target import chat_target
from roost.server.error_format import error_body
from roost.server.sse import event_stream, sse_event
from roost.storage.ids import new_id

router = APIRouter(prefix="/v1", tags=["anthropic"])
SessionHeader = Annotated[str | None, Header(alias="x-roost-session", max_length=256)]
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


@router.post("/messages", response_model=None)
async def create_message(
    body: MessagesRequest, request: Request, session: SessionHeader = None
) -> Response:
    principal = request.state.principal
    # The header names the session; else the end user of metadata.user_id does.
    session = session or (body.metadata.user_id if body.metadata else None)
    target = await chat_target(request, body.model)
    chat = body.to_chat_request(body.sampling(), tenant_id=principal.tenant_id, session_id=session)
    if body.stream:
        stream = await target.open_stream(chat)
        # Gateway groups know input tokens only at the end; message_delta carries them.
        return event_stream(_events(stream.events, stream.model, stream.prompt_tokens))
    return JSONResponse(_message(await target.complete(chat)))


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
        "stop_reason": _stop_reason(choice),
        "stop_sequence": choice.stop_sequence,
        "usage": _usage(result.usage),
    }


@router.post("/messages/count_tokens")
async def count_tokens(body: CountTokensRequest, request: Request) -> dict[str, int]:
    target = await chat_target(request, body.model)
    chat = body.to_chat_request(
        SamplingParams(), tenant_id=request.state.principal.tenant_id, session_id=None
    )
    return {"input_tokens": target.count_tokens(chat)}


def _stop_reason(response: ModelResponse) -> str:
    if response.finish_reason == "stop" and response.stop_sequence is not None:
        return "stop_sequence"
    return _STOP_REASONS.get(response.finish_reason, "end_turn")


def _usage(usage: Usage) -> dict[str, int]:
    # Anthropic counts cached input apart: input_tokens is what was computed afresh.
    return {
        "input_tokens": usage.input_tokens - usage.cached_input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": 0,
    }


async def _events(
    events: AsyncIterator[StreamEvent], model: str, prompt_tokens: int
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
            elif isinstance(event, ToolCallDelta):
                if event.id is not None:  # a call's first delta names it
                    if open_kind is not None:
                        yield close()
                    block += 1
                    open_kind = "tool_use"
                    yield sse_event(
                        "content_block_start",
                        {"type": "content_block_start", "index": block,
                         "content_block": {"type": "tool_use", "id": event.id,
                                           "name": event.name or "", "input": {}}},
                    )  # fmt: skip
                if event.arguments:
                    yield sse_event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": block,
                         "delta": {"type": "input_json_delta", "partial_json": event.arguments}},
                    )  # fmt: skip
            elif isinstance(event, ResponseDone):
                if open_kind is not None:
                    yield close()
                    open_kind = None
                response = event.response
                yield sse_event(
                    "message_delta",
                    {"type": "message_delta",
                     "delta": {"stop_reason": _stop_reason(response),
                               "stop_sequence": response.stop_sequence},
                     "usage": _usage(response.usage)},
                )  # fmt: skip
        yield sse_event("message_stop", {"type": "message_stop"})
    except RoostError as exc:
        _, _, body = error_body(exc, path="/v1/messages", request_id=None)
        yield sse_event("error", json.loads(body))
