"""`roost serve` as `make run` starts it: the model loads in the background, then serves."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from roost.engine import Engine
from tests.support.process import start_server

KEY = "serve-test-key-0123456789abcdef"


@pytest.mark.slow
def test_serve_loads_model_and_answers(model_home: Path, engine: Engine) -> None:
    # model_home already holds the converted model (the session's engine made it).
    env = {"ROOST_HOME": str(model_home), "ROOST_API_KEY": KEY}
    server = start_server(env, ready_marker="model loaded", timeout_s=180)
    try:
        ready = httpx.get(f"{server.url}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["engine"] == "ok"
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
        reply = client.chat.completions.create(
            model=engine.model_name,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8,
        )
        assert reply.choices[0].message.content
    finally:
        server.stop()


@pytest.mark.slow
def test_serve_refuses_a_pool_larger_than_memory(model_home: Path) -> None:
    env = {
        "ROOST_HOME": str(model_home),
        "ROOST_API_KEY": KEY,
        "ROOST_ENGINE__KV_CACHE_GB": "100000",
    }
    # The model is loaded (and refused) while the server starts: once it listens, the
    # refusal is in its log and its readiness answers.
    server = start_server(env, timeout_s=120)
    try:
        assert "engine.kv_cache_gb is 100000 GB but only" in server.output
        ready = httpx.get(f"{server.url}/health/ready")
        assert ready.status_code == 503
        assert "GB of memory is available" in ready.text
    finally:
        server.stop()
