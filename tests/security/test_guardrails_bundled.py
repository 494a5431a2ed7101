"""The legacy /v1/completions path on the bundled model is guarded too: a text prompt is
masked before the engine sees it (``echo`` returns the prompt as the engine got it), a
token-id prompt, which cannot be read, is refused when inputs are masked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from roost.config import load_settings
from roost.engine import Engine
from roost.server.app import create_app
from tests.support.uvicorn_thread import ThreadedServer

pytestmark = pytest.mark.slow
KEY = "h-guard-bundled-key-0123456789abcdef"


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[openai.OpenAI]:
    settings = load_settings(env={"ROOST_HOME": str(tmp_path), "ROOST_API_KEY": KEY,
                                  "ROOST_GUARDRAILS__INPUT": "mask"})  # fmt: skip
    app = create_app(settings)
    app.state.engine = engine
    server = ThreadedServer(app).start()
    try:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0) as oai:
            yield oai
    finally:
        server.stop()


def test_completions_prompts_are_masked_and_token_ids_refused(
    client: openai.OpenAI, engine: Engine
) -> None:
    reply = client.completions.create(
        model=engine.model_name, prompt="Write to ada@example.com about", max_tokens=2,
        echo=True, temperature=0,
    )  # fmt: skip
    text = reply.choices[0].text
    assert text.startswith("Write to [EMAIL] about") and "ada@" not in text
    with pytest.raises(openai.BadRequestError, match="token-id prompts cannot be checked"):
        client.completions.create(model=engine.model_name, prompt=[1, 2, 3], max_tokens=2)
