"""Canonical JSON of requests (for cache keys) and responses (for cache values)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
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
    sampling = asdict(settings)
    sampling.pop("timeout_s", None)
    return {
        "messages": [message_to_json(m) for m in messages],
        "tools": [asdict(t) for t in tools],
        "settings": sampling,
    }


def message_to_json(message: Message) -> dict[str, Any]:
    return {"role": message.role, "parts": [asdict(p) for p in message.parts]}


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
            "usage": asdict(response.usage),
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
