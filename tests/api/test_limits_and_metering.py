"""Issue 17 on the real model through a real server, with the official SDKs: local calls
metered on every endpoint (visible in /v1/usage and `roost usage`), token budgets that
cap the local model, the max_tokens ceiling, and abandoned non-streaming requests freed."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from roost.config import load_settings
from roost.engine import Engine
from roost.platform import Platform
from roost.server.app import create_app
from tests.support.process import run_roost
from tests.support.uvicorn_thread import ThreadedServer

ADMIN_KEY = "limits-admin-key-0123456789abcdef"
TOKEN_BUDGET = 400


@dataclass
class Deployment:
    server: ThreadedServer
    home: Path
    key: str  # a key of tenant "metered", whose calls only these tests make
    tenant_id: str
    budget_key: str  # a key of tenant "capped", under a token budget


async def _tenant_with_key(home: Path, name: str) -> tuple[str, str]:
    settings = load_settings(env={"ROOST_HOME": str(home), "ROOST_API_KEY": ADMIN_KEY})
    platform = await Platform.open(settings)
    try:
        tenant = await platform.tenants.create(name)
        _, key = await platform.api_keys.create(tenant.id, "test")
        return tenant.id, key
    finally:
        await platform.close()


@pytest.fixture(scope="module")
def deployment(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("limits-home")
    tenant_id, key = asyncio.run(_tenant_with_key(home, "metered"))
    capped_id, capped_key = asyncio.run(_tenant_with_key(home, "capped"))
    budgets = [{"tenant": capped_id, "limit_tokens": TOKEN_BUDGET, "period": "day"}]
    settings = load_settings(
        env={
            "ROOST_HOME": str(home),
            "ROOST_API_KEY": ADMIN_KEY,
            "ROOST_LLM__BUDGETS": json.dumps(budgets),
        }
    )
    app = create_app(settings)
    app.state.engine = engine
    server = ThreadedServer(app).start()
    yield Deployment(server, home, key, tenant_id, capped_key)
    server.stop()


def _oai(deployment: Deployment, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{deployment.server.url}/v1", api_key=key or deployment.key, max_retries=0
    )


def test_local_calls_on_every_endpoint_are_metered(deployment: Deployment, model_name: str) -> None:
    question = [{"role": "user", "content": "Name a colour."}]
    with _oai(deployment) as client:
        whole = client.chat.completions.create(model=model_name, messages=question, max_tokens=5)
        stream = client.chat.completions.create(
            model=model_name, messages=question, max_tokens=5, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        streamed = [chunk.usage for chunk in stream if chunk.usage is not None][-1]
        text = client.completions.create(model=model_name, prompt="Once upon", max_tokens=5)
    with anthropic.Anthropic(
        base_url=deployment.server.url, api_key=deployment.key, max_retries=0
    ) as claude:
        message = claude.messages.create(model=model_name, max_tokens=5, messages=question)
    assert whole.usage and text.usage
    expected_in = (
        whole.usage.prompt_tokens + streamed.prompt_tokens + text.usage.prompt_tokens
        + message.usage.input_tokens + message.usage.cache_read_input_tokens
    )  # fmt: skip
    expected_out = (
        whole.usage.completion_tokens + streamed.completion_tokens
        + text.usage.completion_tokens + message.usage.output_tokens
    )  # fmt: skip

    usage = httpx.get(
        f"{deployment.server.url}/v1/usage",
        params={"group_by": "model"},
        headers={"Authorization": f"Bearer {deployment.key}"},
    ).json()
    [row] = usage["rows"]
    assert row["model"] == f"local:{model_name}"
    assert row["calls"] == 4
    assert (row["input_tokens"], row["output_tokens"]) == (expected_in, expected_out)
    assert row["cost_usd"] == 0  # local, no price configured
    by_key = httpx.get(
        f"{deployment.server.url}/v1/usage",
        params={"group_by": "key"},
        headers={"Authorization": f"Bearer {deployment.key}"},
    ).json()
    assert by_key["rows"][0]["key"] == deployment.key.split("-")[1]

    cli = run_roost(
        "usage", "--tenant", "metered", "--json", env={"ROOST_HOME": str(deployment.home)}
    )
    assert cli.returncode == 0, cli.stderr
    [report] = json.loads(cli.stdout)
    assert report["total_calls"] == 4
    assert report["total_input_tokens"] == expected_in
    assert report["total_output_tokens"] == expected_out


def test_a_token_budget_caps_the_local_model(deployment: Deployment, model_name: str) -> None:
    question = [{"role": "user", "content": "Count to ten."}]
    answered = 0
    client = _oai(deployment, deployment.budget_key)
    with client, pytest.raises(openai.RateLimitError) as refused:
        for _ in range(20):
            client.chat.completions.create(
                model=model_name, messages=question, max_tokens=60,
                extra_body={"ignore_eos": True},
            )  # fmt: skip
            answered += 1
    # Each call uses its prompt plus 60 tokens: only a few fit in the day's 400.
    assert 1 <= answered <= TOKEN_BUDGET // 60
    assert refused.value.code == "budget_exceeded"
    assert f"budget of {TOKEN_BUDGET} tokens" in refused.value.message
    usage = httpx.get(
        f"{deployment.server.url}/v1/usage",
        headers={"Authorization": f"Bearer {deployment.budget_key}"},
    ).json()
    [budget] = usage["budgets"]
    assert budget["limit_tokens"] == TOKEN_BUDGET
    assert budget["spent_tokens"] <= TOKEN_BUDGET and budget["reserved_tokens"] == 0


def test_max_tokens_over_the_ceiling_is_refused_in_each_dialect(
    deployment: Deployment, model_name: str, engine: Engine
) -> None:
    ceiling = engine.max_tokens_ceiling
    assert ceiling is not None
    question = [{"role": "user", "content": "Hi"}]
    with _oai(deployment) as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model_name, messages=question, max_tokens=ceiling + 1)
    assert refused.value.param == "max_tokens"
    with (
        anthropic.Anthropic(
            base_url=deployment.server.url, api_key=deployment.key, max_retries=0
        ) as claude,
        pytest.raises(anthropic.BadRequestError, match="at most"),
    ):
        claude.messages.create(model=model_name, max_tokens=ceiling + 1, messages=question)


def _wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Re-check ``condition`` (engine state read from another thread) until it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_an_abandoned_non_streaming_request_is_freed_within_a_second(
    deployment: Deployment, model_name: str, engine: Engine
) -> None:
    body = json.dumps(
        {"model": model_name, "max_tokens": 3000, "ignore_eos": True,
         "messages": [{"role": "user", "content": "Write a very long story."}]}
    ).encode()  # fmt: skip
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: roost\r\n"
        f"Authorization: Bearer {deployment.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    assert engine.stats()["num_running"] == 0
    with socket.create_connection(("127.0.0.1", deployment.server.port)) as client:
        client.sendall(head + body)
        assert _wait_until(lambda: engine.stats()["num_running"] == 1, 30)
    left = time.monotonic()
    assert _wait_until(lambda: engine.stats()["num_running"] == 0, 1.0)
    assert time.monotonic() - left < 1.0
