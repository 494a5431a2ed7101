"""Constrained decoding for tool calls and JSON replies, and parsing of what comes out.

The grammar (llguidance Lark with embedded JSON Schemas) fixes each call's header and
trailer and constrains its arguments to the tool's schema, so every call parses and
validates. ``tool_choice`` decides the shape: calls only (``required`` / one named tool),
text or calls (``auto``), or text only (``none``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from roost.chat.prompt import TOOL_CALL_OPEN, TOOL_CALL_TRAILER, tool_call_header
from roost.chat.types import ChatRequest
from roost.engine.sampling_params import StructuredOutput
from roost.errors import InvalidRequest
from roost.llm.messages import ToolCallPart, ToolDefinition
from roost.storage.ids import new_id


def offered_tools(request: ChatRequest) -> list[ToolDefinition]:
    """The tools the model may call under the request's ``tool_choice``."""
    choice = request.tool_choice
    if choice.mode == "none" or not request.tools:
        if choice.mode in ("required", "named"):
            raise InvalidRequest(f"tool_choice {choice.mode!r} needs tools", param="tool_choice")
        return []
    if choice.mode == "named":
        named = [t for t in request.tools if t.name == choice.name]
        if not named:
            raise InvalidRequest(
                f"tool_choice names {choice.name!r}, which is not among the tools",
                param="tool_choice",
            )
        return named
    return list(request.tools)


def structured_output(request: ChatRequest, tools: list[ToolDefinition]) -> StructuredOutput | None:
    """The grammar for this request, or None when the reply is free text."""
    text_rule = _text_rule(request)
    if not tools:
        # Tools withheld by tool_choice "none": the reply is still text, never a call
        # written out by hand (small models copy earlier calls from the transcript).
        if request.response_format is None and not request.tools:
            return None
        return StructuredOutput(lark=f"start: reply\n{text_rule}")
    lines = []
    names = []
    for position, tool in enumerate(tools):
        rule = f"call_{position}"
        names.append(rule)
        lines.append(f"{rule}: {json.dumps(tool_call_header(tool.name))} args_{position} "
                     f"{json.dumps(TOOL_CALL_TRAILER)}")  # fmt: skip
        lines.append(f"args_{position}: %json {json.dumps(_arguments_schema(tool))}")
    lines.append(f"call: {' | '.join(names)}")
    lines.append("calls: call+" if request.parallel_tool_calls else "calls: call")
    if request.tool_choice.mode == "auto":
        return StructuredOutput(lark="\n".join(["start: reply | calls", text_rule, *lines]))
    return StructuredOutput(lark="\n".join(["start: calls", *lines]))


def _text_rule(request: ChatRequest) -> str:
    if request.response_format is not None:
        schema = closed_schema(request.response_format.schema or {"type": "object"})
        return f"reply: %json {json.dumps(schema)}"
    # Free text may not open with '<', so that a reply starting like a call is a real call.
    return "reply: /[^<](.|\\n)*/"


def _arguments_schema(tool: ToolDefinition) -> dict[str, Any]:
    schema = dict(tool.parameters or {})
    schema.setdefault("type", "object")
    return closed_schema(schema)


def closed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as the grammar enforces it: objects that list their properties take no
    others unless they say so (as OpenAI's strict mode), and JSON is written on one line
    with ``", "`` and ``": "`` separators, so small models neither ramble nor pad."""
    closed = _close_objects(schema)
    closed["x-guidance"] = {
        "whitespace_flexible": False,
        "item_separator": ", ",
        "key_separator": ": ",
    }
    return closed


def _close_objects(node: Any) -> Any:
    if isinstance(node, list):
        return [_close_objects(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _close_objects(value) for key, value in node.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


@dataclass(slots=True)
class ParsedReply:
    text: str
    tool_calls: list[ToolCallPart]


def parse_reply(text: str) -> ParsedReply:
    """Split generated text into a text reply or the tool calls it makes."""
    if not text.startswith(TOOL_CALL_OPEN):
        return ParsedReply(text, [])
    calls: list[ToolCallPart] = []
    position = 0
    decoder = json.JSONDecoder()
    while text.startswith(TOOL_CALL_OPEN, position):
        parsed = _parse_call(text, position, decoder)
        if parsed is None:
            break
        call, position = parsed
        calls.append(call)
    if not calls:
        return ParsedReply(text, [])
    return ParsedReply(text[position:].strip(), calls)


def _parse_call(
    text: str, start: int, decoder: json.JSONDecoder
) -> tuple[ToolCallPart, int] | None:
    prefix = TOOL_CALL_OPEN + '{"name": '
    if not text.startswith(prefix, start):
        return None
    try:
        name, after_name = decoder.raw_decode(text, start + len(prefix))
    except json.JSONDecodeError:
        return None
    marker = ', "arguments": '
    if not isinstance(name, str) or not text.startswith(marker, after_name):
        return None
    args_start = after_name + len(marker)
    try:
        _, args_end = decoder.raw_decode(text, args_start)
    except json.JSONDecodeError:
        return None
    if not text.startswith(TOOL_CALL_TRAILER, args_end):
        return None
    call = ToolCallPart(new_call_id(), name, text[args_start:args_end])
    return call, args_end + len(TOOL_CALL_TRAILER)


def new_call_id() -> str:
    return new_id("call")
