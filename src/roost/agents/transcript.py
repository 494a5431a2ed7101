"""Thread messages as plain dicts (what checkpoints and the API hold) and back to LLM messages.

A stored message is ``{"id", "role", "content"}`` plus ``tool_calls`` (``[{"id", "name",
"arguments"}]``, arguments as JSON text) on assistant turns and ``tool_call_id``/``name``/
``is_error`` on tool results: the OpenAI shape users already read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from roost.llm.messages import Message, Part, Response, TextPart, ToolCallPart, ToolResultPart

Transcript = list[dict[str, Any]]


def user_message(content: str) -> dict[str, Any]:
    return {"role": "user", "content": content}


def from_response(response: Response) -> dict[str, Any]:
    """The assistant turn of a model response as a stored message."""
    message: dict[str, Any] = {"role": "assistant", "content": response.text}
    calls = response.tool_calls
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments or "{}"} for c in calls
        ]
    return message


def tool_message(call_id: str, name: str, content: str, *, is_error: bool) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_call_id": call_id,
        "name": name,
        "content": content,
        "is_error": is_error,
    }


def to_llm(messages: Iterable[dict[str, Any]]) -> list[Message]:
    """Stored messages as the LLM layer's neutral messages."""
    converted: list[Message] = []
    for stored in messages:
        role = stored.get("role", "user")
        content = str(stored.get("content") or "")
        if role == "tool":
            part = ToolResultPart(
                str(stored.get("tool_call_id", "")),
                content,
                stored.get("name"),
                bool(stored.get("is_error", False)),
            )
            converted.append(Message("tool", (part,)))
            continue
        parts: list[Part] = [TextPart(content)] if content else []
        for call in stored.get("tool_calls") or ():
            parts.append(ToolCallPart(str(call["id"]), str(call["name"]), str(call["arguments"])))
        if role not in ("system", "user", "assistant"):
            role = "user"
        converted.append(Message(role, tuple(parts) or (TextPart(""),)))
    return converted


def last_assistant(messages: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    found = None
    for message in messages:
        if message.get("role") == "assistant":
            found = message
    return found
