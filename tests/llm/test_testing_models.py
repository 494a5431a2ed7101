"""TestModel and FunctionModel: deterministic stand-ins for real models."""

from __future__ import annotations

from roost.llm.base import Model, RequestContext
from roost.llm.messages import Message, ModelSettings, ResponseDone, TextDelta, ToolDefinition
from roost.llm.testing import CallInfo, FunctionModel, TestModel, example_arguments

SEARCH = ToolDefinition(
    "search",
    "Search the web",
    {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 3},
            "limit": {"type": "integer", "minimum": 1},
            "mode": {"enum": ["fast", "deep"]},
            "filters": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "optional": {"type": "boolean"},
        },
        "required": ["query", "limit", "mode", "filters"],
    },
)


async def test_test_model_calls_every_tool_then_answers() -> None:
    model = TestModel()
    assert isinstance(model, Model)
    first = await model.request([Message.user("find cats")], tools=[SEARCH])
    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert call.parsed_arguments() == {"query": "aaa", "limit": 1, "mode": "fast", "filters": ["a"]}
    second = await model.request(
        [Message.user("find cats"), first.message, Message.tool_result(call.id, "3 cats")],
        tools=[SEARCH],
    )
    assert second.finish_reason == "stop"
    assert second.text == "success (no tool calls)"
    assert len(model.calls) == 2


async def test_function_model_streams_what_the_function_returns() -> None:
    def reply(info: CallInfo) -> str:
        return f"{info.messages[-1].text} back at {info.context.tenant_id if info.context else '-'}"

    model = FunctionModel(reply)
    context = RequestContext("t1", agent_id="a1")
    events = [
        e async for e in model.request_stream([Message.user("hi")], ModelSettings(), (), context)
    ]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["hi back at t1"]
    assert isinstance(events[-1], ResponseDone)
    assert events[-1].response.usage.output_tokens == 4
    assert model.last_call.context == context


async def test_function_model_accepts_async_functions() -> None:
    async def reply(info: CallInfo) -> Message:
        return Message.assistant("async works")

    response = await FunctionModel(reply).request([Message.user("x")])
    assert response.text == "async works"


def test_example_arguments_handles_nullable_and_nested_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["null", "number"]},
            "b": {"type": "object", "properties": {"c": {"const": 3}}},
            "d": {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
        },
    }
    assert example_arguments(schema) == {"a": 0.0, "b": {"c": 3}, "d": False}
