"""Messages (and offered tools) to prompt token ids, stable from one turn to the next.

Roost uses one tool-call convention for every model: tools are described in the system
message, and a call is the text ``<tool_call>{"name": "…", "arguments": {…}}</tool_call>``.
An assistant turn is re-rendered from its content and the exact argument text the model
generated, so the prompt of turn N+1 starts with the tokens of turn N and the KV cache
is reused instead of recomputed.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from roost.chat.types import ChatRequest
from roost.errors import InvalidRequest
from roost.llm.messages import Message, ToolCallPart, ToolDefinition, ToolResultPart

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"


class TemplateEngine(Protocol):
    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> list[int]: ...


def tool_call_header(name: str) -> str:
    """The fixed text before a call's arguments; the grammar makes the model write exactly this."""
    return f'{TOOL_CALL_OPEN}{{"name": {json.dumps(name)}, "arguments": '


TOOL_CALL_TRAILER = "}" + TOOL_CALL_CLOSE


def tool_call_text(call: ToolCallPart) -> str:
    return tool_call_header(call.name) + call.arguments + TOOL_CALL_TRAILER


def tools_instructions(tools: list[ToolDefinition]) -> str:
    listing = "\n".join(
        json.dumps(
            {"name": t.name, "description": t.description, "parameters": t.parameters},
            sort_keys=True,
        )
        for t in tools
    )
    return (
        "You can call these tools. Each is described by a JSON object with its name, what it"
        " does, and a JSON Schema of its arguments:\n"
        f"<tools>\n{listing}\n</tools>\n"
        "To call a tool, answer with one line per call and nothing else:\n"
        f'{TOOL_CALL_OPEN}{{"name": "tool name", "arguments": {{...}}}}{TOOL_CALL_CLOSE}\n'
        "The tool's result comes back in a message from the tool. Answer in plain text when"
        " no tool is needed."
    )


def template_messages(request: ChatRequest, *, offer_tools: bool) -> list[dict[str, Any]]:
    """Messages as chat templates expect them: plain string content, tool calls inlined."""
    rendered = [turn for message in request.messages for turn in _render(message)]
    if offer_tools and request.tools:
        instructions = tools_instructions(request.tools)
        if rendered and rendered[0]["role"] == "system":
            rendered[0]["content"] = f"{rendered[0]['content']}\n\n{instructions}".lstrip()
        else:
            rendered.insert(0, {"role": "system", "content": instructions})
    return rendered


def render_prompt(engine: TemplateEngine, request: ChatRequest, *, offer_tools: bool) -> list[int]:
    """Token ids of the whole conversation, ending where the assistant's reply begins."""
    messages = template_messages(request, offer_tools=offer_tools)
    try:
        return engine.apply_chat_template(messages, add_generation_prompt=True)
    except InvalidRequest:
        raise
    except Exception as exc:  # a template that rejects the conversation's shape
        raise InvalidRequest(
            f"the model's chat template cannot render these messages: {exc}", param="messages"
        ) from exc


def _render(message: Message) -> list[dict[str, Any]]:
    if message.role == "assistant":
        content = message.text + "".join(tool_call_text(c) for c in message.tool_calls)
        return [{"role": "assistant", "content": content}]
    if message.role == "tool":
        # Templates know one result per tool turn: a message carrying several becomes several.
        return [
            {"role": "tool", "content": f"Error: {p.content}" if p.is_error else p.content}
            for p in message.parts
            if isinstance(p, ToolResultPart)
        ]
    return [{"role": message.role, "content": message.text}]
