"""LLM-layer responses and stream events as chat results and events (gateway mode)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from roost.chat import (
    ChatEvent,
    ChoiceFinished,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStarted,
    UsageReport,
)
from roost.chat.types import ChatUsage
from roost.llm import messages as llm
from roost.server.gateway_convert import chat_events, chat_result


def response(*parts: llm.Part, finish: llm.FinishReason = "stop") -> llm.Response:
    return llm.Response(
        llm.Message("assistant", parts), finish, llm.Usage(30, 5, 20), "up:model", "r1"
    )


def test_whole_response_keeps_text_calls_usage_and_names_the_group() -> None:
    result = chat_result(
        response(
            llm.TextPart("let me look"),
            llm.ToolCallPart("c1", "search", '{"q": "x"}'),
            llm.ToolCallPart("c2", "now", ""),
            finish="tool_calls",
        ),
        "chat",
    )
    [choice] = result.choices
    assert result.model == "chat"
    assert choice.text == "let me look"
    assert [(c.id, c.name, c.arguments) for c in choice.tool_calls] == [
        ("c1", "search", '{"q": "x"}'),
        ("c2", "now", "{}"),  # no arguments is still a JSON object for both dialects
    ]
    assert choice.finish_reason == "tool_calls"
    assert result.usage == ChatUsage(30, 20, 5)


def test_content_filter_finishes_as_stop() -> None:
    result = chat_result(response(llm.TextPart("..."), finish="content_filter"), "chat")
    assert result.choices[0].finish_reason == "stop"


async def convert(events: list[llm.StreamEvent]) -> tuple[list[ChatEvent], bool]:
    closed = False

    async def source() -> AsyncGenerator[llm.StreamEvent, None]:
        nonlocal closed
        try:
            for event in events:
                yield event
        finally:
            closed = True

    out = [event async for event in chat_events(source())]
    return out, closed


async def test_stream_numbers_tool_calls_in_order_and_ends_with_finish_and_usage() -> None:
    # Anthropic-style indexes (content blocks 1 and 3) become call indexes 0 and 1.
    done = llm.ResponseDone(response(llm.TextPart("hi"), finish="tool_calls"))
    out, closed = await convert(
        [
            llm.TextDelta("hi"),
            llm.ToolCallDelta(1, "c1", "search"),
            llm.ToolCallDelta(1, arguments='{"q":'),
            llm.ToolCallDelta(1, arguments='"x"}'),
            llm.ToolCallDelta(3, "c2", "now", "{}"),
            done,
        ]
    )
    assert out == [
        TextDelta(0, "hi"),
        ToolCallStarted(0, 0, "c1", "search"),
        ToolCallArgumentsDelta(0, 0, '{"q":'),
        ToolCallArgumentsDelta(0, 0, '"x"}'),
        ToolCallStarted(0, 1, "c2", "now"),
        ToolCallArgumentsDelta(0, 1, "{}"),
        ChoiceFinished(0, "tool_calls"),
        UsageReport(ChatUsage(30, 20, 5)),
    ]
    assert closed


async def test_closing_the_chat_stream_closes_the_upstream_stream() -> None:
    closed = False

    async def source() -> AsyncGenerator[llm.StreamEvent, None]:
        nonlocal closed
        try:
            yield llm.TextDelta("a")
            yield llm.TextDelta("b")
        finally:
            closed = True

    events = chat_events(source())
    assert await anext(events) == TextDelta(0, "a")
    await events.aclose()
    assert closed
