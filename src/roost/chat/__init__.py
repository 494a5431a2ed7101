"""Chat on the local engine: messages and tools in, text and tool calls out.

Requests and answers are :mod:`roost.llm.messages` (the one message model inside Roost)
plus :class:`ChatRequest`'s engine-only options. Everything between a conversation and
the engine (prompt rendering that stays token-stable across turns, grammar-constrained
tool calls, n choices, stop reasons, usage) lives here once.
"""

from roost.chat.service import ChatService
from roost.chat.types import (
    ChatRequest,
    ChatResult,
    ChatStream,
    ChatTarget,
    ResponseFormat,
    ToolChoice,
)

__all__ = [
    "ChatRequest",
    "ChatResult",
    "ChatService",
    "ChatStream",
    "ChatTarget",
    "ResponseFormat",
    "ToolChoice",
]
