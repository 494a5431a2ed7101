"""Chat on the local engine: messages and tools in, text and tool calls out.

The OpenAI and Anthropic adapters translate their wire formats to :class:`ChatRequest`
and back; everything in between (prompt rendering that stays token-stable across turns,
grammar-constrained tool calls, n choices, stop reasons, usage) lives here once.
"""

from roost.chat.service import ChatService
from roost.chat.types import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    Choice,
    ChoiceFinished,
    Message,
    ResponseFormat,
    TextDelta,
    ToolCall,
    ToolCallArgumentsDelta,
    ToolCallStarted,
    ToolChoice,
    ToolSpec,
    UsageReport,
)

__all__ = [
    "ChatEvent",
    "ChatRequest",
    "ChatResult",
    "ChatService",
    "Choice",
    "ChoiceFinished",
    "Message",
    "ResponseFormat",
    "TextDelta",
    "ToolCall",
    "ToolCallArgumentsDelta",
    "ToolCallStarted",
    "ToolChoice",
    "ToolSpec",
    "UsageReport",
]
