"""Canonical JSON of requests (for cache keys) and responses (for cache values)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from roost.llm.messages import (
    ImagePart,
    Message,
    ModelSettings,
    Part,
    Response,
    TextPart,
    ToolCallPart,
    ToolDefinition,
    ToolResultPart,
    Usage,
)


def digest(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys, no whitespace)."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def request_identity(
    messages: Sequence[Message], settings: ModelSettings, tools: Sequence[ToolDefinition]
) -> dict[str, Any]:
    """Everything that changes the answer: messages, tools and sampling (not the timeout)."""
    return {
        "messages": [message_to_json(m) for m in messages],
        "tools": [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in tools
        ],
        "settings": [
            settings.max_tokens,
            settings.temperature,
            settings.top_p,
            list(settings.stop),
            settings.seed,
            settings.tool_choice,
            settings.output_schema,
        ],
    }


def message_to_json(message: Message) -> dict[str, Any]:
    # Hand-written rather than dataclasses.asdict, which deep-copies and dominated the
    # cache's cost per request.
    return {"role": message.role, "parts": [part_to_json(p) for p in message.parts]}


def part_to_json(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"kind": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return {"kind": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
    if isinstance(part, ToolResultPart):
        return {
            "kind": "tool_result",
            "tool_call_id": part.tool_call_id,
            "content": part.content,
            "name": part.name,
            "is_error": part.is_error,
        }
    return {"kind": "image", "url": part.url, "media_type": part.media_type}


def message_from_json(data: dict[str, Any]) -> Message:
    return Message(data["role"], tuple(_part(p) for p in data["parts"]))


def _part(data: dict[str, Any]) -> Part:
    fields = {k: v for k, v in data.items() if k != "kind"}
    kind = data["kind"]
    if kind == "text":
        return TextPart(**fields)
    if kind == "image":
        return ImagePart(**fields)
    if kind == "tool_call":
        return ToolCallPart(**fields)
    return ToolResultPart(**fields)


def response_to_json(response: Response) -> str:
    return json.dumps(
        {
            "message": message_to_json(response.message),
            "finish_reason": response.finish_reason,
            "usage": {
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
                "cached_input_tokens": response.usage.cached_input_tokens,
            },
            "model": response.model,
            "id": response.id,
        },
        separators=(",", ":"),
    )


def response_from_json(raw: str) -> Response:
    data = json.loads(raw)
    return Response(
        message_from_json(data["message"]),
        data["finish_reason"],
        Usage(**data["usage"]),
        data["model"],
        data.get("id"),
    )
