"""TracedChat: the local engine's chat calls as GenAI ``chat`` spans, whole and streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from roost.chat import ChatRequest, ChatResult, ChatStream
from roost.chat.traced import TracedChat
from roost.config import TracingSettings
from roost.engine.sampling_params import SamplingParams
from roost.llm.messages import Message, Response, ResponseDone, StreamEvent, TextDelta, Usage
from roost.observe.tracing import RECENT_SPANS, configure_tracing, set_content_policy


def answer(text: str = "Paris") -> Response:
    return Response(Message.assistant(text), "stop", Usage(12, 3, 8), "local:smol")


class ScriptedTarget:
    """Answers every request with ``answer()``; fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    async def complete(self, request: ChatRequest) -> ChatResult:
        if self.fail:
            raise RuntimeError("engine stopped")
        return ChatResult("c1", "local:smol", 0, [answer()], Usage(12, 3, 8))

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        async def events() -> AsyncIterator[StreamEvent]:
            yield TextDelta("Par")
            yield TextDelta("is")
            yield ResponseDone(answer())

        return ChatStream(events(), "local:smol")

    def count_tokens(self, request: ChatRequest) -> int:
        return 5

    def token_decoder(self) -> Callable[[int], str] | None:
        return None


def request() -> ChatRequest:
    return ChatRequest([Message.user("Capital of France?")], SamplingParams(max_tokens=16),
                       tenant_id="ten_a")  # fmt: skip


@pytest.fixture(autouse=True)
def spans() -> None:
    configure_tracing(TracingSettings())
    RECENT_SPANS.clear()


def chat_spans() -> list[dict[str, object]]:
    return [dict(s.attributes or {}) for s in RECENT_SPANS.spans() if s.name == "chat smol"]


async def test_a_whole_answer_is_one_span_with_usage() -> None:
    traced = TracedChat(ScriptedTarget(), "smol")
    result = await traced.complete(request())
    assert result.choices[0].message.text == "Paris"
    (attributes,) = chat_spans()
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "roost"
    assert attributes["gen_ai.request.model"] == "smol"
    assert attributes["gen_ai.response.model"] == "smol"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 8
    assert attributes["roost.tenant_id"] == "ten_a"
    assert "gen_ai.input.messages" not in attributes


async def test_a_stream_is_one_span_ending_with_its_last_event() -> None:
    traced = TracedChat(ScriptedTarget(), "smol")
    stream = await traced.open_stream(request())
    assert chat_spans() == []  # still open while the answer streams
    texts = [e.text async for e in stream.events if isinstance(e, TextDelta)]
    assert texts == ["Par", "is"]
    (attributes,) = chat_spans()
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)


async def test_content_when_the_tenant_allows_and_errors_as_status() -> None:
    set_content_policy(lambda tenant_id: tenant_id == "ten_a")
    try:
        await TracedChat(ScriptedTarget(), "smol").complete(request())
        (attributes,) = chat_spans()
        assert "Capital of France?" in str(attributes["gen_ai.input.messages"])
        assert "Paris" in str(attributes["gen_ai.output.messages"])
    finally:
        set_content_policy(lambda _tenant_id: False)
    with pytest.raises(RuntimeError):
        await TracedChat(ScriptedTarget(fail=True), "smol").complete(request())
    failed = [s for s in RECENT_SPANS.spans() if s.name == "chat smol"][-1]
    assert not failed.status.is_ok
    assert (failed.attributes or {})["error.type"] == "RuntimeError"
