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
