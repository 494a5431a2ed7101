"""Each provider through its real SDK over real HTTP against the loopback upstream."""

from __future__ import annotations

import pytest

from roost.llm.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from roost.llm.messages import (
    Message,
    ModelSettings,
    ResponseDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallPart,
    ToolDefinition,
)
from roost.llm.providers import ProviderRegistry
from tests.llm.conftest import API_KEY
from tests.llm.upstream import MockUpstream, break_stream, hang, malformed, ok, status, tool_call
from tests.support.network_guard import RemoteCallForbidden

PROVIDERS = ["oa:gpt-mock", "an:claude-mock", "gm:gemini-mock"]
WEATHER = ToolDefinition(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def collect(stream: object) -> list[StreamEvent]:
    return [event async for event in stream]  # type: ignore[attr-defined]


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_request_translates_both_ways(
    registry: ProviderRegistry, upstream: MockUpstream, model_id: str
) -> None:
    model = registry.model(model_id)
    messages = [Message.system("be brief"), Message.user("hello there")]
    response = await model.request(messages, ModelSettings(max_tokens=50, temperature=0.2))
    assert response.text == "echo: hello there"
    assert response.finish_reason == "stop"
    assert response.usage.output_tokens == 3
    assert response.usage.input_tokens > 0
    assert response.model == model_id
    seen = upstream.seen[-1]
    # The system prompt went where the dialect wants it.
    if seen.dialect == "anthropic":
        assert seen.body["system"] == "be brief"
        assert seen.body["max_tokens"] == 50
    elif seen.dialect == "openai":
        assert seen.body["messages"][0] == {"role": "system", "content": "be brief"}
        assert seen.body["max_tokens"] == 50
    else:
        assert seen.body["systemInstruction"]["parts"][0]["text"] == "be brief"
        assert seen.body["generationConfig"]["maxOutputTokens"] == 50


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_stream_yields_deltas_then_the_whole_response(
    registry: ProviderRegistry, upstream: MockUpstream, model_id: str
) -> None:
    upstream.push(ok("one two three four"))
    events = await collect(registry.model(model_id).request_stream([Message.user("count")]))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 4
    assert "".join(deltas) == "one two three four"
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.response.text == "one two three four"
    assert done.response.usage.output_tokens == 4


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_tool_calls_round_trip(
    registry: ProviderRegistry, upstream: MockUpstream, model_id: str
) -> None:
    upstream.push(tool_call("get_weather", city="Oslo"), tool_call("get_weather", city="Oslo"))
    model = registry.model(model_id)
    response = await model.request([Message.user("weather?")], tools=[WEATHER])
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert call.name == "get_weather"
    assert call.parsed_arguments() == {"city": "Oslo"}
    events = await collect(model.request_stream([Message.user("weather?")], tools=[WEATHER]))
    assert any(isinstance(e, ToolCallDelta) for e in events)
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.response.tool_calls[0].parsed_arguments() == {"city": "Oslo"}
    # The follow-up turn carries the call and its result in the provider's shape.
    follow_up = [
        Message.user("weather?"),
        Message("assistant", (ToolCallPart(call.id, "get_weather", '{"city": "Oslo"}'),)),
        Message.tool_result(call.id, "sunny", name="get_weather"),
    ]
    reply = await model.request(follow_up, tools=[WEATHER])
    assert reply.text.startswith("echo")
    assert "sunny" in str(upstream.seen[-1].body)


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_rate_limit_carries_retry_after(
    registry: ProviderRegistry, upstream: MockUpstream, model_id: str
) -> None:
    upstream.push(status(429, retry_after="7"))
    with pytest.raises(ProviderRateLimited) as caught:
        await registry.model(model_id).request([Message.user("hi")])
    if not model_id.startswith("gm"):  # google-genai does not expose response headers
        assert caught.value.retry_after_s == 7
    assert len(upstream.seen) == 1  # the SDK did not retry on its own


@pytest.mark.parametrize("model_id", PROVIDERS)
@pytest.mark.parametrize(
    ("code", "error"),
    [
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (400, ProviderRejected),
        (401, ProviderAuthError),
    ],
)
async def test_status_codes_map_to_error_kinds(
    registry: ProviderRegistry,
    upstream: MockUpstream,
    model_id: str,
    code: int,
    error: type[ProviderError],
) -> None:
    upstream.push(status(code))
    with pytest.raises(error) as caught:
        await registry.model(model_id).request([Message.user("hi")])
    assert caught.value.deployment == model_id
    assert API_KEY not in str(caught.value)
    assert len(upstream.seen) == 1  # SDK retries are off


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_timeout_is_unavailable(
    registry: ProviderRegistry, upstream: MockUpstream, model_id: str
) -> None:
    upstream.push(hang(2.0))
    with pytest.raises(ProviderUnavailable):
        await registry.model(model_id).request([Message.user("hi")], ModelSettings(timeout_s=0.3))


@pytest.mark.parametrize("model_id", ["oa:gpt-mock", "an:claude-mock"])
async def test_malformed_stream_is_an_error(
    registry: ProviderRegistry, upstream: MockUpstream, model_id: str
) -> None:
    upstream.push(malformed())
    with pytest.raises(ProviderError):
        await collect(registry.model(model_id).request_stream([Message.user("hi")]))


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_stream_broken_midway_raises_after_partial_text(
    registry: ProviderRegistry, upstream: MockUpstream, model_id: str
) -> None:
    upstream.push(break_stream("alpha beta gamma"))
    received: list[str] = []
    with pytest.raises(ProviderError):
        async for event in registry.model(model_id).request_stream([Message.user("hi")]):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert received  # tokens reached us before the break


async def test_api_key_goes_in_the_header_not_the_logs(
    registry: ProviderRegistry, upstream: MockUpstream
) -> None:
    await registry.model("oa:gpt-mock").request([Message.user("hi")])
    assert upstream.seen[-1].headers["authorization"] == f"Bearer {API_KEY}"
    await registry.model("an:claude-mock").request([Message.user("hi")])
    headers = upstream.seen[-1].headers
    assert API_KEY in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
    assert API_KEY not in repr(registry.providers["oa"])


async def test_real_provider_hosts_are_unreachable_from_tests() -> None:
    registry = ProviderRegistry(env={"OPENAI_API_KEY": "sk-not-real"})
    try:
        with pytest.raises(RemoteCallForbidden):
            await registry.model("openai:gpt-4.1-mini").request([Message.user("hi")])
    finally:
        await registry.aclose()


def test_unknown_provider_is_a_clear_error() -> None:
    from roost.llm.errors import UnknownModel

    with pytest.raises(UnknownModel, match="unknown provider 'nope'"):
        ProviderRegistry(env={}).model("nope:model")
    with pytest.raises(UnknownModel, match="provider:model"):
        ProviderRegistry(env={}).model("no-colon")
