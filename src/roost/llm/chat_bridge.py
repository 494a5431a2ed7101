"""Conversions between the engine's chat types (:mod:`roost.chat.types`, what the
server's OpenAI and Anthropic adapters parse requests into) and this layer's neutral
messages, so gateway mode can hand an already-parsed request to
:meth:`roost.llm.service.LLMService.request` and encode the answer back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from roost.llm.messages import (
    FinishReason,
    Message,
    ModelSettings,
    Part,
    TextPart,
    ToolCallPart,
    ToolDefinition,
    ToolResultPart,
)


def messages_from_chat(messages: Sequence[Any]) -> list[Message]:
    """``roost.chat.types.Message`` objects as neutral messages."""
    out: list[Message] = []
    for message in messages:
        if message.role == "tool":
            result = ToolResultPart(
                message.tool_call_id or "", message.content, message.name, message.is_error
            )
            out.append(Message("tool", (result,)))
            continue
        parts: list[Part] = [TextPart(message.content)] if message.content else []
        parts += [ToolCallPart(c.id, c.name, c.arguments) for c in message.tool_calls]
        out.append(Message(message.role, tuple(parts)))
    return out


def tools_from_chat(tools: Sequence[Any]) -> list[ToolDefinition]:
    """``roost.chat.types.ToolSpec`` objects as tool definitions."""
    return [ToolDefinition(t.name, t.description, t.parameters) for t in tools]


def settings_from_chat(request: Any) -> ModelSettings:
    """Sampling and tool choice of a ``roost.chat.types.ChatRequest``."""
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


def chat_finish_reason(reason: FinishReason) -> str:
    """A neutral finish reason in the engine's vocabulary (``content_filter`` → ``stop``)."""
    return "stop" if reason == "content_filter" else reason
