"""The LLM layer's responses and stream events as the chat types the OpenAI and Anthropic
adapters already encode, so gateway answers reuse the local engine's response and SSE
builders whatever dialect the upstream provider spoke."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

from roost.chat import (
    ChatEvent,
    ChatResult,
    Choice,
    ChoiceFinished,
    TextDelta,
    ToolCall,
    ToolCallArgumentsDelta,
    ToolCallStarted,
    UsageReport,
)
from roost.chat.types import ChatUsage, FinishReason
from roost.llm import messages as llm
from roost.storage.ids import new_id

_FINISH: dict[llm.FinishReason, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "stop",
    "error": "error",
}


def chat_usage(usage: llm.Usage) -> ChatUsage:
    """Both count cached input as part of the prompt."""
    return ChatUsage(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens)


def chat_result(response: llm.Response, model: str) -> ChatResult:
    """A whole response as a one-choice result, named ``model`` (the group asked for)."""
    choice = Choice(
        0,
        response.text,
        [ToolCall(c.id, c.name, c.arguments or "{}") for c in response.tool_calls],
        _FINISH[response.finish_reason],
    )
    return ChatResult(
        new_id("chatcmpl"), model, int(time.time()), [choice], chat_usage(response.usage)
    )


async def chat_events(
    events: AsyncGenerator[llm.StreamEvent, None],
) -> AsyncGenerator[ChatEvent, None]:
    """Stream events as one choice's chat events, ending with its finish and usage."""
    # Providers number tool calls their own way (Anthropic by content block); the
    # builders want 0, 1, 2... in order of appearance.
    call_indexes: dict[int, int] = {}
    async with aclosing(events):  # closing this stream ends the upstream call
        async for event in events:
            if isinstance(event, llm.TextDelta):
                yield TextDelta(0, event.text)
            elif isinstance(event, llm.ToolCallDelta):
                call_index = call_indexes.get(event.index)
                if call_index is None:
                    call_index = call_indexes[event.index] = len(call_indexes)
                    call_id = event.id or new_id("call")
                    yield ToolCallStarted(0, call_index, call_id, event.name or "")
                if event.arguments:
                    yield ToolCallArgumentsDelta(0, call_index, event.arguments)
            else:
                response = event.response
                yield ChoiceFinished(0, _FINISH[response.finish_reason])
                yield UsageReport(chat_usage(response.usage))
