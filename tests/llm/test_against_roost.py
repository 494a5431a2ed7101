"""The openai and anthropic providers against Roost's own OpenAI- and Anthropic-
compatible endpoints, served on loopback with the bundled model: real SDKs, real wire
format, a real model answering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from roost.config import LLMProviderSettings
from roost.llm.messages import Message, ModelSettings, ResponseDone, TextDelta, ToolDefinition
from roost.llm.providers import ProviderRegistry
from tests.llm.conftest import RoostBackend

pytestmark = pytest.mark.slow


@pytest.fixture
async def roost_registry(roost_server: RoostBackend) -> AsyncIterator[ProviderRegistry]:
    url = roost_server.url
    secret: Any = roost_server.api_key
    registry = ProviderRegistry(
        {
            "roost_oa": LLMProviderSettings(kind="openai", base_url=f"{url}/v1", api_key=secret),
            "roost_an": LLMProviderSettings(kind="anthropic", base_url=url, api_key=secret),
        },
        env={},
    )
    yield registry
    await registry.aclose()


@pytest.mark.parametrize("provider", ["roost_oa", "roost_an"])
async def test_whole_and_streamed_answers(
    roost_registry: ProviderRegistry, roost_server: RoostBackend, provider: str
) -> None:
    model = roost_registry.model(f"{provider}:{roost_server.model}")
    messages = [Message.system("You are terse."), Message.user("Name a colour.")]
    settings = ModelSettings(max_tokens=8, temperature=0.0)
    whole = await model.request(messages, settings)
    assert whole.text.strip()
    assert 0 < whole.usage.output_tokens <= 8
    assert whole.usage.input_tokens > 0
    assert whole.finish_reason in ("stop", "length")
    events = [e async for e in model.request_stream(messages, settings)]
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == done.response.text
    assert done.response.text == whole.text  # greedy: the same answer both ways
    assert done.response.usage.output_tokens == whole.usage.output_tokens


@pytest.mark.parametrize("provider", ["roost_oa", "roost_an"])
async def test_required_tool_call_comes_back_parsed(
    roost_registry: ProviderRegistry, roost_server: RoostBackend, provider: str
) -> None:
    model = roost_registry.model(f"{provider}:{roost_server.model}")
    weather = ToolDefinition(
        "get_weather",
        "Current weather in a city",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    response = await model.request(
        [Message.user("What is the weather in Paris?")],
        ModelSettings(max_tokens=48, temperature=0.0, tool_choice="required"),
        [weather],
    )
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert call.name == "get_weather"
    assert isinstance(call.parsed_arguments().get("city"), str)
