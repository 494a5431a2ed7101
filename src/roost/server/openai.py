"""OpenAI-compatible endpoints: chat completions, completions, models. The local engine
answers its own model's name; gateway model groups go through the LLM layer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from roost.chat import ChatResult
from roost.engine.sequence import TokenLogprob
from roost.errors import NotFound, RoostError
from roost.llm.messages import (
    FinishReason,
    ResponseDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    choices_usage,
)
from roost.llm.messages import (
    Response as ModelResponse,
)
from roost.server import gateway, openai_extras
from roost.server.chat_target import chat_target
from roost.server.error_format import error_body
from roost.server.openai_schema import ChatCompletionRequest
from roost.server.sse import event_stream, sse_data
from roost.storage.ids import new_id

router = APIRouter(prefix="/v1", tags=["openai"])
router.include_router(openai_extras.router)
SessionHeader = Annotated[str | None, Header(alias="x-roost-session", max_length=256)]
# OpenAI's vocabulary has no word for these; clients have always seen "stop".
_FINISH = {"content_filter": "stop", "cancelled": "stop", "error": "stop"}
FINGERPRINT = "roost-local"


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, session: SessionHeader = None
) -> Response:
    principal = request.state.principal
    # The header or a session_id body field names the session; else the end user does.
    session = session or body.session_id or body.user
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    target = await chat_target(request, body.model)
    chat = body.to_chat_request(tenant_id=principal.tenant_id, session_id=session)
    decode = target.token_decoder() if body.logprobs else None
    if body.stream:
        stream = await target.open_stream(chat)
        return event_stream(
            _chat_chunks(stream.events, stream.model, chat.n, include_usage, decode)
        )
    result = await target.complete(chat)
    return JSONResponse(_chat_completion(result, logprobs=body.logprobs, decode=decode))


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [_model_card(m) for m in _served_models(request)]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    for name in _served_models(request):
        if model_id in (name, f"local:{name}"):
            return _model_card(name)
    raise NotFound(f"model {model_id!r} not found", param="model")


def _served_models(request: Request) -> list[str]:
    state = getattr(request.app.state, "inference", None)
    engine = state.engine if state is not None else None
    local = [engine.model_name] if engine is not None else []
    return local + gateway.gateway_models(request.app)


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "roost"}


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _finish(reason: FinishReason) -> str:
    return _FINISH.get(reason, reason)


def _logprobs_body(service_tokens: Sequence[TokenLogprob], decode: Any) -> dict[str, Any]:
    def entry(token_id: int, logprob: float) -> dict[str, Any]:
        text = decode(token_id)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

    return {
        "content": [
            {**entry(t.token_id, t.logprob), "top_logprobs": [entry(i, lp) for i, lp in t.top]}
            for t in service_tokens
        ]
    }


def _chat_completion(result: ChatResult, *, logprobs: bool, decode: Any = None) -> dict[str, Any]:
    return {
        "id": result.id,
        "object": "chat.completion",
        "created": result.created,
        "model": result.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [_choice_body(i, c, logprobs, decode) for i, c in enumerate(result.choices)],
        "usage": usage_body(result.usage),
    }


def _choice_body(index: int, choice: ModelResponse, logprobs: bool, decode: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text if choice.text or not choice.tool_calls else None,
        "refusal": None,
    }
    if choice.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in choice.tool_calls
        ]
    return {
        "index": index,
        "message": message,
        "logprobs": _logprobs_body(choice.logprobs, decode) if logprobs and decode else None,
        "finish_reason": _finish(choice.finish_reason),
    }


async def _chat_chunks(
    events: AsyncIterator[StreamEvent],
    model: str,
    n: int,
    include_usage: bool,
    decode: Callable[[int], str] | None = None,
) -> AsyncIterator[bytes]:
    completion_id = new_id("chatcmpl")
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            payload["usage"] = usage
        return sse_data(payload)

    def delta(index: int, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"index": index, "delta": content, "logprobs": None, "finish_reason": None, **extra}

    for index in range(n):
        yield chunk([delta(index, {"role": "assistant", "content": ""})])
    usages: list[Usage] = []
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                logprobs = (
                    _logprobs_body(event.logprobs, decode) if decode and event.logprobs else None
                )
                if event.text or logprobs:
                    yield chunk([delta(event.choice, {"content": event.text}, logprobs=logprobs)])
            elif isinstance(event, ToolCallDelta):
                if event.id is not None:  # a call's first delta names it
                    call = {
                        "index": event.index,
                        "id": event.id,
                        "type": "function",
                        "function": {"name": event.name or "", "arguments": ""},
                    }
                    yield chunk([delta(event.choice, {"tool_calls": [call]})])
                if event.arguments:
                    call = {"index": event.index, "function": {"arguments": event.arguments}}
                    yield chunk([delta(event.choice, {"tool_calls": [call]})])
            elif isinstance(event, ResponseDone):
                finished = delta(event.choice, {})
                finished["finish_reason"] = _finish(event.response.finish_reason)
                yield chunk([finished])
                usages.append(event.response.usage)
        if include_usage:
            yield chunk([], usage_body(choices_usage(usages)))
    except RoostError as exc:
        # The status line is gone: report the error in-band, as OpenAI does.
        _, _, error = error_body(exc, path="/v1/chat/completions", request_id=None)
        yield f"data: {error.decode()}\n\n".encode()
    yield sse_data("[DONE]")
