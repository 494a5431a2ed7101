"""Gateway mode end to end: a real Roost server whose model groups start with a failing
upstream and fall back to another real Roost server (the bundled model), called with the
official openai and anthropic SDKs in both dialects, whole and streamed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from roost.cli.main import app as cli
from roost.config import load_settings
from roost.platform import Platform
from roost.server.app import create_app
from tests.llm.conftest import RoostBackend
from tests.llm.upstream import MockUpstream, break_stream
from tests.support.uvicorn_thread import ThreadedServer

pytestmark = pytest.mark.slow
ADMIN_KEY = "gateway-admin-key-0123456789abcdef"
PRICE = {"input": 1.0, "output": 2.0}  # USD per 1M tokens for the fallback deployments


class FailingUpstream:
    """Answers every request with a 500 and counts them: the deployment that is down."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        app = FastAPI()

        @app.post("/{path:path}")
        async def fail(path: str, request: Request) -> JSONResponse:
            await request.body()
            self.hits.append(path)
            return JSONResponse({"error": {"message": "injected failure"}}, status_code=500)

        self.server = ThreadedServer(app)


@dataclass
class Gateway:
    url: str
    config: Path
    home: Path
    failing: FailingUpstream
    backend_model: str
    acme_key: str  # a key of a second tenant, "acme"

    def oai(self, key: str = ADMIN_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def claude(self, key: str = ADMIN_KEY) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0)

    def usage(self, key: str) -> dict[str, Any]:
        reply = httpx.get(f"{self.url}/v1/usage", headers={"Authorization": f"Bearer {key}"})
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body


def gateway_config(home: Path, failing_url: str, backend: RoostBackend, breaking_url: str) -> Path:
    model = backend.model
    config = home / "roost.toml"
    config.write_text(
        f"""
[engine]
enabled = false

[llm.providers.flaky]
kind = "openai"
base_url = "{failing_url}/v1"
api_key = "sk-flaky-secret-0000000000"

[llm.providers.flaky_claude]
kind = "anthropic"
base_url = "{failing_url}"
api_key = "sk-flaky-claude-secret-0000"

[llm.providers.roost_oa]
kind = "openai"
base_url = "{backend.url}/v1"
api_key = "{backend.api_key}"

[llm.providers.roost_an]
kind = "anthropic"
base_url = "{backend.url}"
api_key = "{backend.api_key}"

[llm.providers.breaking]
kind = "openai"
base_url = "{breaking_url}/v1"
api_key = "sk-breaking-secret-000000"

[llm.groups.chat]
deployments = ["flaky:gpt-4.1-mini", "roost_oa:{model}"]

[llm.groups.claude]
deployments = ["flaky_claude:claude-haiku-4-5", "roost_an:{model}"]

[llm.groups.dead]
deployments = ["flaky:gpt-4.1-mini"]

[llm.groups.breaking]
deployments = ["breaking:gpt-4.1-mini"]

[llm.retry]
max_retries = 0

[llm.circuit]
failure_threshold = 1000   # keep trying the failing deployment first, so every call fails over

[llm.prices."roost_oa:{model}"]
input = {PRICE["input"]}
output = {PRICE["output"]}

[llm.prices."roost_an:{model}"]
input = {PRICE["input"]}
output = {PRICE["output"]}

[[llm.budgets]]
limit_usd = 1
period = "day"
"""
    )
    return config


async def add_tenant(config: Path, home: Path, name: str) -> str:
    """A tenant and an API key for it, made the way ``roost keys create`` does."""
    settings = load_settings(config, env={"ROOST_HOME": str(home)})
    platform = await Platform.open(settings)
    try:
        tenant = await platform.tenants.create(name)
        _, plaintext = await platform.api_keys.create(tenant.id, f"{name}-key")
        return plaintext
    finally:
        await platform.close()


@pytest.fixture(scope="module")
def gateway(
    roost_server: RoostBackend,
    upstream_server: MockUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    failing = FailingUpstream()
    failing.server.start()
    home = tmp_path_factory.mktemp("gateway-home")
    config = gateway_config(home, failing.server.url, roost_server, upstream_server.url)
    settings = load_settings(config, env={"ROOST_HOME": str(home), "ROOST_API_KEY": ADMIN_KEY})
    server = ThreadedServer(create_app(settings)).start()
    acme_key = asyncio.run(add_tenant(config, home, "acme"))
    try:
        yield Gateway(server.url, config, home, failing, roost_server.model, acme_key)
    finally:
        server.stop()
        failing.server.stop()


def prompt_tokens(usage: anthropic.types.Usage) -> int:
    return usage.input_tokens + (usage.cache_read_input_tokens or 0)


def calls_by_model(usage: dict[str, Any]) -> dict[str, int]:
    return {row["model"]: row["calls"] for row in usage["rows"]}


QUESTION = [{"role": "user", "content": "Name a colour."}]
# Current anthropic SDKs have no temperature argument; the wire format still takes it.
GREEDY = {"temperature": 0}


def test_openai_client_fails_over_and_is_charged_to_its_tenant(gateway: Gateway) -> None:
    before = len(gateway.failing.hits)
    admin_calls = gateway.usage(ADMIN_KEY)["total_calls"]
    with gateway.oai(gateway.acme_key) as client:
        reply = client.chat.completions.create(
            model="chat", messages=QUESTION, max_tokens=8, temperature=0
        )
    assert reply.choices[0].message.content
    assert reply.model == "chat"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert 0 < reply.usage.completion_tokens <= 8
    assert gateway.failing.hits[before:] == ["v1/chat/completions"]  # the primary was tried

    usage = gateway.usage(gateway.acme_key)
    fallback = f"roost_oa:{gateway.backend_model}"
    assert calls_by_model(usage) == {fallback: 1}  # one record per call, on the fallback
    [row] = usage["rows"]
    expected = (
        reply.usage.prompt_tokens * PRICE["input"] + reply.usage.completion_tokens * PRICE["output"]
    ) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)
    assert (row["input_tokens"], row["output_tokens"]) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert gateway.usage(ADMIN_KEY)["total_calls"] == admin_calls  # acme's call is acme's

    result = CliRunner().invoke(
        cli,
        ["--config", str(gateway.config), "usage", "--tenant", "acme", "--json"],
        env={"ROOST_HOME": str(gateway.home)},
    )
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    assert report["tenant_name"] == "acme"
    assert report["total_calls"] == usage["total_calls"]
    assert report["total_cost_usd"] == pytest.approx(usage["total_cost_usd"])


def test_openai_client_streams_chunks_with_usage(gateway: Gateway) -> None:
    with gateway.oai() as client:
        whole = client.chat.completions.create(
            model="chat", messages=QUESTION, max_tokens=8, temperature=0
        )
        chunks = list(
            client.chat.completions.create(
                model="chat",
                messages=QUESTION,
                max_tokens=8,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content  # greedy: the same answer both ways
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length")
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert {c.model for c in chunks} == {"chat"}


@pytest.mark.parametrize("group", ["claude", "chat"])
def test_anthropic_client_whole_and_streamed_whatever_the_upstream(
    gateway: Gateway, group: str
) -> None:
    before = len(gateway.failing.hits)
    with gateway.claude() as client:
        whole = client.messages.create(
            model=group,
            max_tokens=8,
            extra_body=GREEDY,
            messages=QUESTION,  # type: ignore[arg-type]
        )
        with client.messages.stream(
            model=group,
            max_tokens=8,
            extra_body=GREEDY,
            messages=QUESTION,  # type: ignore[arg-type]
        ) as stream:
            streamed_text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert whole.content[0].type == "text" and whole.content[0].text
    assert streamed_text == whole.content[0].text
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens == whole.usage.output_tokens
    # Anthropic counts cache reads apart; the backend's prefix cache may serve either call.
    assert prompt_tokens(final.usage) == prompt_tokens(whole.usage) > 0
    assert len(gateway.failing.hits) - before == 2  # both calls failed over


def test_cached_prompt_tokens_pass_through(gateway: Gateway) -> None:
    # The backend's prefix cache serves a repeated long prompt; both dialects report it.
    system = "You are a helpful assistant. " * 20
    messages = [{"role": "system", "content": system}, *QUESTION]
    with gateway.oai() as client:
        for _ in range(2):
            reply = client.chat.completions.create(
                model="chat",
                messages=messages,  # type: ignore[arg-type]
                max_tokens=2,
                temperature=0,
            )
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens
    with gateway.claude() as claude:
        for _ in range(2):
            message = claude.messages.create(
                model="claude",
                system=system,
                max_tokens=2,
                extra_body=GREEDY,
                messages=QUESTION,  # type: ignore[arg-type]
            )
    assert message.usage.cache_read_input_tokens


WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_tool_calls_pass_through_both_dialects(gateway: Gateway) -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    with gateway.oai() as client:
        reply = client.chat.completions.create(
            model="claude",  # OpenAI client, Anthropic-dialect upstream
            messages=ask,  # type: ignore[arg-type]
            tools=[{"type": "function", "function": WEATHER}],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=40,
            temperature=0,
        )
    [call] = reply.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert reply.choices[0].finish_reason == "tool_calls"

    tool = {
        "name": WEATHER["name"],
        "description": WEATHER["description"],
        "input_schema": WEATHER["parameters"],
    }
    with (
        gateway.claude() as claude,
        claude.messages.stream(
            model="chat",  # Anthropic client, OpenAI-dialect upstream
            max_tokens=40,
            extra_body=GREEDY,
            messages=ask,  # type: ignore[arg-type]
            tools=[tool],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "get_weather"},
        ) as stream,
    ):
        final = stream.get_final_message()
    [block] = [b for b in final.content if b.type == "tool_use"]
    assert block.name == "get_weather"
    assert "city" in block.input  # type: ignore[operator]
    assert final.stop_reason == "tool_use"


def test_names_that_are_not_groups_are_404_in_each_dialect(gateway: Gateway) -> None:
    with gateway.oai() as client:
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=QUESTION)
        assert "'chat'" in caught.value.message and "'claude'" in caught.value.message
        # A bare provider:model id would reach an upstream with the operator's key.
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model=f"roost_oa:{gateway.backend_model}", messages=QUESTION
            )
        listed = {m.id for m in client.models.list()}
    assert {"chat", "claude", "dead", "breaking"} <= listed
    with gateway.claude() as claude, pytest.raises(anthropic.NotFoundError) as not_found:
        claude.messages.create(model="claude-opus-4", max_tokens=8, messages=QUESTION)  # type: ignore[arg-type]
    assert not_found.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_exhausted_budget_is_429_in_each_dialect(gateway: Gateway) -> None:
    # The worst case of 1M output tokens at $2/1M is over the $1 daily budget.
    with gateway.oai() as client, pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="chat", messages=QUESTION, max_tokens=1_000_000)
    assert "budget of $1.00 this day" in caught.value.message
    assert caught.value.response.headers["retry-after"]
    assert caught.value.code == "budget_exceeded"
    with (
        gateway.claude() as claude,
        pytest.raises(anthropic.RateLimitError) as limited,
        claude.messages.stream(
            model="claude",
            max_tokens=1_000_000,
            messages=QUESTION,  # type: ignore[arg-type]
        ) as stream,
    ):
        stream.get_final_message()
    assert "budget" in limited.value.message


def test_every_deployment_down_is_502_before_any_stream(gateway: Gateway) -> None:
    with gateway.oai() as client:
        with pytest.raises(openai.APIStatusError) as whole:
            client.chat.completions.create(model="dead", messages=QUESTION, max_tokens=8)
        with pytest.raises(openai.APIStatusError) as streamed:
            client.chat.completions.create(
                model="dead", messages=QUESTION, max_tokens=8, stream=True
            )
    assert whole.value.status_code == streamed.value.status_code == 502
    assert "every deployment of 'dead' failed" in whole.value.message
    with gateway.claude() as claude, pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(model="dead", max_tokens=8, messages=QUESTION)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "error"  # type: ignore[index]


def test_stream_broken_after_tokens_is_an_error_event(
    gateway: Gateway, upstream: MockUpstream
) -> None:
    upstream.push(break_stream("the first words then"))
    received: list[str] = []
    with gateway.oai() as client:
        stream = client.chat.completions.create(
            model="breaking", messages=QUESTION, max_tokens=8, stream=True
        )
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received).startswith("the first")  # tokens arrived before the failure
    assert "failed after the stream began" in caught.value.message

    upstream.push(break_stream("the first words then"))
    with (
        gateway.claude() as claude,
        pytest.raises(anthropic.APIStatusError) as broken,
        claude.messages.stream(
            model="breaking",
            max_tokens=8,
            messages=QUESTION,  # type: ignore[arg-type]
        ) as events,
    ):
        for _ in events.text_stream:
            pass
    assert "failed after the stream began" in broken.value.message
    assert len(upstream.seen) == 2  # never retried once tokens had been sent


def test_engine_only_features_are_refused_on_groups(gateway: Gateway) -> None:
    with gateway.oai() as client:
        for extra in ({"n": 2}, {"logprobs": True}, {"response_format": {"type": "json_object"}}):
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.create(
                    model="chat",
                    messages=QUESTION,  # type: ignore[arg-type]
                    max_tokens=8,
                    **extra,  # type: ignore[arg-type]
                )
            assert "not supported for gateway model groups" in caught.value.message
    with gateway.claude() as claude, pytest.raises(anthropic.BadRequestError) as counting:
        claude.messages.count_tokens(model="chat", messages=QUESTION)  # type: ignore[arg-type]
    assert "gateway model groups" in counting.value.message
