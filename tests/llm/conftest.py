"""LLM-layer fixtures: a loopback upstream speaking three wire formats and a real Roost
server with the bundled model. (The guard against calls beyond this machine covers every
test: tests/conftest.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from roost.config import LLMProviderSettings, load_settings
from roost.engine import Engine, EngineConfig
from roost.llm.providers import ProviderRegistry
from roost.server.app import create_app
from tests.llm.upstream import MockUpstream
from tests.support.uvicorn_thread import ThreadedServer

API_KEY = "sk-test-secret-key-0123456789"


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[MockUpstream]:
    server = MockUpstream()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def upstream(upstream_server: MockUpstream) -> MockUpstream:
    """The loopback upstream with an empty script."""
    upstream_server.reset()
    return upstream_server


@pytest.fixture
async def registry(upstream: MockUpstream) -> AsyncIterator[ProviderRegistry]:
    """Providers ``oa`` (OpenAI), ``an`` (Anthropic) and ``gm`` (Gemini), all on the upstream."""
    secret: Any = API_KEY
    providers = {
        "oa": LLMProviderSettings(
            kind="openai", base_url=f"{upstream.url}/v1", api_key=secret, timeout_s=2
        ),
        "an": LLMProviderSettings(
            kind="anthropic", base_url=upstream.url, api_key=secret, timeout_s=2
        ),
        "gm": LLMProviderSettings(
            kind="gemini", base_url=upstream.url, api_key=secret, timeout_s=2
        ),
    }
    registry = ProviderRegistry(providers, env={})
    yield registry
    await registry.aclose()


class RoostBackend(NamedTuple):
    """A Roost server answering with the bundled model: its URL, model name and API key."""

    url: str
    model: str
    api_key: str


@pytest.fixture(scope="session")
def roost_server(
    model_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RoostBackend]:
    engine = Engine(
        EngineConfig(home=model_home, dtype="float32", kv_cache_gb=0.25, max_num_seqs=4)
    )
    key = "llm-test-key-0123456789abcdef"
    settings = load_settings(
        env={"ROOST_HOME": str(tmp_path_factory.mktemp("llm-roost")), "ROOST_API_KEY": key}
    )
    app = create_app(settings)
    app.state.engine = engine
    server = ThreadedServer(app).start()
    try:
        yield RoostBackend(server.url, engine.model_name, key)
    finally:
        server.stop()
        engine.close()
