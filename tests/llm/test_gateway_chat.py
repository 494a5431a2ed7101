"""Gateway mode: a chat request answered by an LLM model group, in the shared message model."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from roost.chat import ChatRequest, ToolChoice
from roost.engine.sampling_params import SamplingParams
from roost.llm import messages as llm
from roost.llm.gateway_chat import GatewayChat, _numbered_calls, settings_of
from roost.llm.providers.local import to_chat_request


def response(*parts: llm.Part, finish: llm.FinishReason = "stop") -> llm.Response:
    return llm.Response(
        llm.Message("assistant", parts), finish, llm.Usage(30, 5, 20), "up:model", "r1"
    )


def chat_request() -> ChatRequest:
    return ChatRequest(
        [
            llm.Message.system("be brief"),
            llm.Message.user("weather in Oslo?"),
            llm.Message("assistant", (llm.ToolCallPart("c1", "weather", '{"city":"Oslo"}'),)),
            llm.Message.tool_result("c1", "rain", name="weather"),
        ],
        SamplingParams(max_tokens=64, temperature=0.3, stop="END", seed=7),
        tools=[llm.ToolDefinition("weather", "Weather now", {"type": "object"})],
        tool_choice=ToolChoice("named", "weather"),
    )


def test_settings_round_trip_and_messages_pass_as_they_are() -> None:
    request = chat_request()
    settings = settings_of(request)
    assert (settings.max_tokens, settings.temperature, settings.stop) == (64, 0.3, ("END",))
    assert settings.tool_choice == "weather"
    again = to_chat_request(request.messages, settings, request.tools, None)
    assert again.messages == request.messages
    assert again.tools == request.tools
    assert again.tool_choice == request.tool_choice
    assert again.sampling.seed == 7


class FakeLLMService:
    def __init__(self, answer: llm.Response) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any]] = []

    async def request(self, model: str, messages: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((model, kwargs["context"]))
        return self.answer


async def test_whole_answer_names_the_group_and_gives_empty_calls_an_object() -> None:
    answer = response(
        llm.TextPart("let me look"),
        llm.ToolCallPart("c1", "search", '{"q": "x"}'),
        llm.ToolCallPart("c2", "now", ""),
        finish="tool_calls",
    )
    service = FakeLLMService(answer)
    target = GatewayChat(service, "chat", tenant_id="t1", key_id="k1")  # type: ignore[arg-type]
    request = chat_request()
    request.session_id = "s1"
    result = await target.complete(request)
    [choice] = result.choices
    assert result.model == "chat"
    assert choice.text == "let me look"
    assert [(c.id, c.name, c.arguments) for c in choice.tool_calls] == [
        ("c1", "search", '{"q": "x"}'),
        ("c2", "now", "{}"),  # no arguments is still a JSON object for both dialects
    ]
    assert result.usage == llm.Usage(30, 5, 20)
    [(model, context)] = service.calls
    assert (model, context.tenant_id, context.key_id, context.cache_identity) == (
        "chat", "t1", "k1", "s1",
    )  # fmt: skip


async def numbered(events: list[llm.StreamEvent]) -> tuple[list[llm.StreamEvent], bool]:
    closed = False

    async def source() -> AsyncGenerator[llm.StreamEvent, None]:
        nonlocal closed
        try:
            for event in events:
                yield event
        finally:
            closed = True

    out = [event async for event in _numbered_calls(source())]
    return out, closed


async def test_stream_numbers_tool_calls_in_order_of_appearance() -> None:
    # Anthropic-style indexes (content blocks 1 and 3) become call indexes 0 and 1.
    done = llm.ResponseDone(response(llm.TextPart("hi"), finish="tool_calls"))
    out, closed = await numbered(
        [
            llm.TextDelta("hi"),
            llm.ToolCallDelta(1, "c1", "search"),
            llm.ToolCallDelta(1, arguments='{"q":'),
            llm.ToolCallDelta(1, name="search", arguments='"x"}'),
            llm.ToolCallDelta(3, None, "now", "{}"),
            done,
        ]
    )
    assert out[:4] == [
        llm.TextDelta("hi"),
        llm.ToolCallDelta(0, "c1", "search"),
        llm.ToolCallDelta(0, arguments='{"q":'),
        llm.ToolCallDelta(0, arguments='"x"}'),
    ]
    started = out[4]
    assert isinstance(started, llm.ToolCallDelta)
    assert (started.index, started.name, started.arguments) == (1, "now", "{}")
    assert started.id and started.id.startswith("call")  # a call always gets an id
    assert out[5] == done
    assert closed


async def test_closing_the_stream_closes_the_upstream_stream() -> None:
    closed = False

    async def source() -> AsyncGenerator[llm.StreamEvent, None]:
        nonlocal closed
        try:
            yield llm.TextDelta("a")
            yield llm.TextDelta("b")
        finally:
            closed = True

    events = _numbered_calls(source())
    assert await anext(events) == llm.TextDelta("a")
    await events.aclose()
    assert closed
