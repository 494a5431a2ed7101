"""One engine and one real server for the API suite, driven by the official SDKs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from roost.config import load_settings
from roost.engine import Engine, EngineConfig
from roost.kvcache import open_session_store
from roost.server.app import create_app
from tests.support.uvicorn_thread import ThreadedServer

API_KEY = "api-test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def engine(model_home: Path) -> Iterator[Engine]:
    # float32: greedy decoding is then the same with and without a prefix-cache hit, which
    # tests comparing two replies rely on (bf16 rounding can flip a near tie).
    engine = Engine(
        EngineConfig(home=model_home, dtype="float32", kv_cache_gb=0.25, max_num_seqs=16),
        session_store=open_session_store,
    )
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def server(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    home = tmp_path_factory.mktemp("api-home")
    settings = load_settings(env={"ROOST_HOME": str(home), "ROOST_API_KEY": API_KEY})
    app = create_app(settings)
    app.state.engine = engine
    running = ThreadedServer(app).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def model_name(engine: Engine) -> str:
    return engine.model_name


@pytest.fixture
def oai(server: ThreadedServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def claude(server: ThreadedServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=API_KEY, max_retries=0) as client:
        yield client
