"""The local provider hands neutral messages to the engine's chat service (which speaks
them too), streaming as well, and passes the caller's cache identity through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from roost.chat import types as chat
from roost.errors import InvalidRequest, Overloaded, RoostError
from roost.llm.base import RequestContext
from roost.llm.errors import ProviderRejected, ProviderUnavailable
from roost.llm.messages import (
    Message,
    ModelSettings,
    Response,
    ResponseDone,
    StreamEvent,
    TextDelta,
    ToolCallPart,
    ToolDefinition,
    Usage,
)
from roost.llm.providers.local import LocalModel


class FakeChatService:
    def __init__(self, error: Exception | None = None, *, stream_error: str | None = None) -> None:
        self.requests: list[chat.ChatRequest] = []
        self.error = error
        self.stream_error = stream_error

    async def complete(self, request: chat.ChatRequest) -> chat.ChatResult:
        self.requests.append(request)
        if self.error:
            raise self.error
        reply = Message("assistant", (ToolCallPart("call_0", "lookup", '{"q":"x"}'),))
        usage = Usage(20, 16, 3)
        choice = Response(reply, "tool_calls", usage, "smol", "chatcmpl-1")
        return chat.ChatResult("chatcmpl-1", "smol", 0, [choice], usage)

    async def stream(self, request: chat.ChatRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        yield TextDelta("hel")
        if self.stream_error:
            raise RoostError(self.stream_error)
        yield TextDelta("lo")
        reply = Message.assistant("hello")
        yield ResponseDone(Response(reply, "stop", Usage(7, 2), "smol", "c1", stop_sequence="END"))


def local(service: FakeChatService) -> LocalModel:
    async def get() -> FakeChatService:
        return service

    return LocalModel("local:smol", get)


async def test_request_round_trip_with_tools_and_cache_identity() -> None:
    service = FakeChatService()
    messages = [
        Message.system("sys"),
        Message.user("find x"),
        Message("assistant", (ToolCallPart("c1", "lookup", '{"q":"y"}'),)),
        Message.tool_result("c1", "nothing", name="lookup"),
    ]
    context = RequestContext("t1", cache_identity="agent-7")
    response = await local(service).request(
        messages, ModelSettings(max_tokens=32, temperature=0.0, stop=("END",)),
        [ToolDefinition("lookup", "", {"type": "object"})], context,
    )  # fmt: skip
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls[0].parsed_arguments() == {"q": "x"}
    assert (response.usage.input_tokens, response.usage.cached_input_tokens) == (20, 3)
    [sent] = service.requests
    assert sent.session_id == "agent-7"
    assert sent.tenant_id == "t1"
    assert [m.role for m in sent.messages] == ["system", "user", "assistant", "tool"]
    assert sent.messages[2].tool_calls[0].name == "lookup"
    assert sent.messages[3] == messages[3]  # the same message model: passed as is
    assert sent.sampling.max_tokens == 32
    assert sent.sampling.temperature == 0.0
    assert sent.tools[0].name == "lookup"


async def test_stream_maps_events_and_usage() -> None:
    events = [e async for e in local(FakeChatService()).request_stream([Message.user("hi")])]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["hel", "lo"]
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.response.text == "hello"
    assert done.response.finish_reason == "stop"
    assert done.response.stop_sequence == "END"
    assert done.response.model == "local:smol"  # the provider's id, not the engine's name
    assert done.response.usage.output_tokens == 2


async def test_engine_errors_map_to_provider_errors() -> None:
    with pytest.raises(ProviderRejected):
        await local(FakeChatService(InvalidRequest("too long"))).request([Message.user("x")])

    async def loading() -> FakeChatService:
        raise Overloaded("the model is still loading; retry shortly")

    with pytest.raises(ProviderUnavailable, match="still loading"):
        await LocalModel("local:smol", loading).request([Message.user("x")])


async def test_a_failed_generation_mid_stream_is_a_provider_error() -> None:
    model = local(FakeChatService(stream_error="out of blocks"))
    with pytest.raises(ProviderUnavailable, match="local:smol: out of blocks"):
        async for _ in model.request_stream([Message.user("x")]):
            pass
