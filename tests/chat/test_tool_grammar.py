"""Which grammar a chat request gets: calls, text, or a JSON reply."""

from __future__ import annotations

from typing import Any

from roost.chat.tool_grammar import offered_tools, structured_output
from roost.chat.types import ChatRequest, ResponseFormat, ToolChoice
from roost.engine.sampling_params import SamplingParams
from roost.llm.messages import Message, ToolDefinition

TOOL = ToolDefinition("calculate", "Arithmetic", {"type": "object", "properties": {}})


def request(**kwargs: Any) -> ChatRequest:
    return ChatRequest([Message.user("hi")], SamplingParams(max_tokens=8), **kwargs)


def test_tools_withheld_by_choice_none_still_force_a_text_reply() -> None:
    # A small model that saw a call earlier in the transcript would otherwise write one
    # out as text; the reply rule cannot start like a call.
    withheld = request(tools=[TOOL], tool_choice=ToolChoice("none"))
    assert offered_tools(withheld) == []
    grammar = structured_output(withheld, [])
    assert grammar is not None and grammar.lark.startswith("start: reply\nreply: /[^<]")
    assert structured_output(request(), []) is None  # no tools at all: free text


def test_a_response_format_shapes_the_reply_beside_tool_calls() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    shaped = request(tools=[TOOL], response_format=ResponseFormat(schema))
    grammar = structured_output(shaped, offered_tools(shaped))
    assert grammar is not None
    assert grammar.lark.startswith("start: reply | calls\nreply: %json")
    assert '"answer"' in grammar.lark
