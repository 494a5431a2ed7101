"""Tool-call parsing, whole and streamed, split at every possible chunk boundary."""

from __future__ import annotations

import json

import pytest

from roost.chat.prompt import tool_call_text
from roost.chat.stream_parser import Delta, ReplyStreamParser
from roost.chat.tool_grammar import closed_schema, parse_reply
from roost.llm.messages import TextDelta, ToolCallDelta, ToolCallPart

CALLS = [
    ToolCallPart("call_a", "get_weather", '{"city": "Paris"}'),
    ToolCallPart("call_b", "search", '{"query": "a } tricky </tool_call> string", "n": 3}'),
]
TWO_CALLS_TEXT = "".join(tool_call_text(c) for c in CALLS)


def stream_all(text: str, chunks: list[str], *, tools_offered: bool = True) -> list[Delta]:
    parser = ReplyStreamParser(0, tools_offered=tools_offered)
    events: list[Delta] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    assert "".join(chunks) == text
    return events


def split_every(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def summarize(events: list[Delta]) -> tuple[str, list[tuple[str, str]]]:
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls: list[list[str]] = []
    for event in events:
        if isinstance(event, ToolCallDelta) and event.id is not None:
            assert event.index == len(calls)
            assert not event.arguments  # a call's first delta only names it
            calls.append([event.name or "", ""])
        elif isinstance(event, ToolCallDelta):
            calls[event.index][1] += event.arguments
    return text, [(name, args) for name, args in calls]


def test_parse_reply_finds_calls_with_exact_argument_text() -> None:
    parsed = parse_reply(TWO_CALLS_TEXT)
    assert parsed.text == ""
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [
        (c.name, c.arguments) for c in CALLS
    ]


def test_parse_reply_keeps_plain_text_and_broken_calls_as_text() -> None:
    assert parse_reply("Hello there").tool_calls == []
    truncated = tool_call_text(CALLS[0])[:-5]
    parsed = parse_reply(truncated)
    assert parsed.tool_calls == []
    assert parsed.text == truncated


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 1000])
def test_streamed_calls_match_whole_parse_at_any_split(size: int) -> None:
    text, calls = summarize(stream_all(TWO_CALLS_TEXT, split_every(TWO_CALLS_TEXT, size)))
    assert text == ""
    assert calls == [(c.name, c.arguments) for c in CALLS]
    for _, arguments in calls:
        json.loads(arguments)


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_streamed_text_passes_through(size: int) -> None:
    reply = "<b>not a call</b> but text"
    text, calls = summarize(stream_all(reply, split_every(reply, size)))
    assert (text, calls) == (reply, [])
    plain = "Just words."
    assert summarize(stream_all(plain, split_every(plain, size), tools_offered=False)) == (
        plain,
        [],
    )


def test_text_held_back_only_while_it_could_open_a_call() -> None:
    parser = ReplyStreamParser(0, tools_offered=True)
    assert parser.feed("<tool") == []
    released = parser.feed("box is here")
    assert "".join(e.text for e in released if isinstance(e, TextDelta)) == "<toolbox is here"


def test_length_cut_inside_a_call_releases_what_was_generated() -> None:
    in_trailer = tool_call_text(CALLS[0])[:-8]
    assert summarize(stream_all(in_trailer, split_every(in_trailer, 4)))[1] == [
        ("get_weather", '{"city": "Paris"}')
    ]
    in_arguments = tool_call_text(CALLS[0])[:-16]
    assert summarize(stream_all(in_arguments, split_every(in_arguments, 4)))[1] == [
        ("get_weather", '{"city": "Pari')
    ]


def test_closed_schema_forbids_unlisted_properties_and_fixes_layout() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}},
        "additionalProperties": True,
    }
    closed = closed_schema(schema)
    assert closed["additionalProperties"] is True  # an explicit choice is kept
    assert closed["properties"]["a"]["additionalProperties"] is False
    assert closed["x-guidance"]["whitespace_flexible"] is False
    assert schema["properties"]["a"] == {"type": "object", "properties": {"b": {"type": "string"}}}
