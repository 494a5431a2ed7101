"""Scripted models for deterministic, offline tests of everything above this layer.

``TestModel`` calls every offered tool once with arguments valid for its schema, then
answers in text; ``FunctionModel`` answers with whatever a test function returns.
Both stream too, and both record what they were asked.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from roost.llm.base import NO_SETTINGS, RequestContext, response_events
from roost.llm.limits import ModelLimits
from roost.llm.messages import (
    FinishReason,
    Message,
    ModelSettings,
    Part,
    Response,
    StreamEvent,
    TextPart,
    ToolCallPart,
    ToolDefinition,
    ToolResultPart,
    Usage,
)


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What a scripted model was asked, for assertions and for ``FunctionModel`` functions."""

    messages: tuple[Message, ...]
    settings: ModelSettings
    tools: tuple[ToolDefinition, ...]
    context: RequestContext | None


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def _usage_for(messages: Sequence[Message], reply: Message) -> Usage:
    prompt = " ".join(_message_text(m) for m in messages)
    return Usage(
        input_tokens=count_tokens(prompt), output_tokens=count_tokens(_message_text(reply))
    )


def _message_text(message: Message) -> str:
    pieces: list[str] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, ToolCallPart):
            pieces.append(f"{part.name} {part.arguments}")
        elif isinstance(part, ToolResultPart):
            pieces.append(part.content)
    return " ".join(pieces)


class _ScriptedModel:
    """Shared bookkeeping: the id, the calls received, and streaming built on ``request``."""

    def __init__(self, model_id: str, context_length: int | None = None) -> None:
        self._model_id = model_id
        self.context_length = context_length
        self.calls: list[CallInfo] = []

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def last_call(self) -> CallInfo:
        return self.calls[-1]

    async def limits(self) -> ModelLimits | None:
        """With a ``context_length``, limits like the local engine's: words are its tokens."""
        if self.context_length is None:
            return None
        return ModelLimits(self.context_length, count_tokens, exact=True)

    def _record(
        self,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
        context: RequestContext | None,
    ) -> CallInfo:
        info = CallInfo(tuple(messages), settings, tuple(tools), context)
        self.calls.append(info)
        return info

    async def request(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> Response:
        return await self._answer(self._record(messages, settings, tools, context))

    async def request_stream(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]:
        response = await self._answer(self._record(messages, settings, tools, context))
        for event in response_events(response):
            yield event

    async def _answer(self, info: CallInfo) -> Response:
        raise NotImplementedError


class TestModel(_ScriptedModel):
    """Calls each offered tool once (schema-valid arguments), then replies ``output_text``."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        model_id: str = "test:test-model",
        *,
        output_text: str = "success (no tool calls)",
        context_length: int | None = None,
    ) -> None:
        super().__init__(model_id, context_length)
        self.output_text = output_text

    async def _answer(self, info: CallInfo) -> Response:
        answered = any(isinstance(p, ToolResultPart) for m in info.messages for p in m.parts)
        if info.tools and not answered:
            parts: tuple[Part, ...] = tuple(
                ToolCallPart(f"call_{i}", tool.name, json.dumps(example_arguments(tool.parameters)))
                for i, tool in enumerate(info.tools)
            )
            reply = Message("assistant", parts)
            return Response(reply, "tool_calls", _usage_for(info.messages, reply), self.model_id)
        reply = Message.assistant(self.output_text)
        return Response(reply, "stop", _usage_for(info.messages, reply), self.model_id)


FunctionResult = Response | Message | str
ModelFunction = Callable[[CallInfo], FunctionResult | Awaitable[FunctionResult]]


class FunctionModel(_ScriptedModel):
    """Answers with ``function(call_info)``: a str, a :class:`Message` or a full :class:`Response`."""

    def __init__(
        self,
        function: ModelFunction,
        model_id: str = "function:function-model",
        *,
        context_length: int | None = None,
    ) -> None:
        super().__init__(model_id, context_length)
        self.function = function

    async def _answer(self, info: CallInfo) -> Response:
        result = self.function(info)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Response):
            return result
        reply = Message.assistant(result) if isinstance(result, str) else result
        finish: FinishReason = "tool_calls" if reply.tool_calls else "stop"
        return Response(reply, finish, _usage_for(info.messages, reply), self.model_id)


@dataclass(slots=True)
class _SchemaWalker:
    depth: int = 0


def example_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """An object valid for a JSON Schema ``object`` (required properties, simple types)."""
    value = _example(schema, _SchemaWalker())
    return value if isinstance(value, dict) else {}


def _example(schema: dict[str, Any], walker: _SchemaWalker) -> Any:
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _example(schema[key][0], walker)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        if walker.depth > 8:  # recursive schemas end here
            return {}
        walker.depth += 1
        props: dict[str, Any] = schema.get("properties", {})
        required = schema.get("required", list(props))
        result = {name: _example(props[name], walker) for name in required if name in props}
        walker.depth -= 1
        return result
    if kind == "array":
        min_items = int(schema.get("minItems", 0))
        return [_example(schema.get("items", {}), walker) for _ in range(min_items)]
    if kind == "string":
        return "a" * int(schema.get("minLength", 1))
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    return None
