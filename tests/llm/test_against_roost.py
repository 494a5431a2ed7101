"""The openai and anthropic providers against Roost's own OpenAI- and Anthropic-
compatible endpoints, served on loopback with the bundled model: real SDKs, real wire
format, a real model answering."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from roost.config import LLMProviderSettings, load_settings
from roost.engine import Engine, EngineConfig
from roost.llm.messages import Message, ModelSettings, ResponseDone, TextDelta, ToolDefinition
from roost.llm.providers import ProviderRegistry
from roost.server.app import create_app
from tests.support.uvicorn_thread import ThreadedServer

pytestmark = pytest.mark.slow
KEY = "llm-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def roost_server(
    model_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    engine = Engine(
        EngineConfig(home=model_home, dtype="float32", kv_cache_gb=0.25, max_num_seqs=4)
    )
    settings = load_settings(
        env={"ROOST_HOME": str(tmp_path_factory.mktemp("llm-roost")), "ROOST_API_KEY": KEY}
    )
    app = create_app(settings)
    app.state.engine = engine
    server = ThreadedServer(app).start()
    try:
        yield server.url, engine.model_name
    finally:
        server.stop()
        engine.close()


@pytest.fixture
async def roost_registry(roost_server: tuple[str, str]) -> AsyncIterator[ProviderRegistry]:
    url, _ = roost_server
    secret: object = KEY
    registry = ProviderRegistry(
        {
            "roost_oa": LLMProviderSettings(kind="openai", base_url=f"{url}/v1", api_key=secret),  # type: ignore[arg-type]
            "roost_an": LLMProviderSettings(kind="anthropic", base_url=url, api_key=secret),  # type: ignore[arg-type]
        },
        env={},
    )
    yield registry
    await registry.aclose()


@pytest.mark.parametrize("provider", ["roost_oa", "roost_an"])
async def test_whole_and_streamed_answers(
    roost_registry: ProviderRegistry, roost_server: tuple[str, str], provider: str
) -> None:
    model = roost_registry.model(f"{provider}:{roost_server[1]}")
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
    roost_registry: ProviderRegistry, roost_server: tuple[str, str], provider: str
) -> None:
    model = roost_registry.model(f"{provider}:{roost_server[1]}")
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
