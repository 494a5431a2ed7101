"""Server-sent events: encoding, and a streaming response that cancels work on disconnect."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse_data(payload: Any) -> bytes:
    """One ``data:`` event carrying JSON (or a raw string such as ``[DONE]``)."""
    body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {body}\n\n".encode()


def sse_event(event: str, payload: Any) -> bytes:
    """A named event, as Anthropic's streaming API sends them."""
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def event_stream(chunks: AsyncIterator[bytes]) -> StreamingResponse:
    """Stream ``chunks``; when the client goes away Starlette cancels the iterator, whose
    cleanup cancels the generation and frees its KV blocks."""
    return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
