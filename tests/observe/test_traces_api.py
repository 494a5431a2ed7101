"""A chat, an agent run with tool calls and a coordinator run each become one trace that
the API returns with its parent/child structure, GenAI attributes, cost and (when the
tenant allows) content; a caller's traceparent is continued and passed upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from tests.agents.test_api import agent_app, answer_with_tools, new_thread
from tests.agents.test_coordinator_runs import Gate, coordinator_app
from tests.observe.trace_helpers import (
    CALLER_SPAN,
    CALLER_TRACE,
    TRACEPARENT,
    ancestors,
    flatten,
    named,
    only_trace,
)
from tests.server.conftest import AppFactory
from tests.support.uvicorn_thread import ThreadedServer


class OpenAIUpstream:
    """A provider on loopback speaking OpenAI's chat API; records the headers it got."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request) -> dict[str, Any]:
            await request.body()
            self.traceparents.append(request.headers.get("traceparent"))
            return {
                "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "up-model",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Paris"}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            }  # fmt: skip

        self.server = ThreadedServer(app)


@pytest.fixture
def upstream(roost_home: Path) -> Iterator[OpenAIUpstream]:
    provider = OpenAIUpstream()
    provider.server.start()
    roost_home.mkdir(parents=True, exist_ok=True)
    (roost_home / "roost.toml").write_text(
        f"""
[llm.providers.up]
kind = "openai"
base_url = "{provider.server.url}/v1"
api_key = "sk-upstream-test-000000000000"

[llm.groups.chat]
deployments = ["up:up-model"]

[llm.prices."up:up-model"]
input = 1000.0
output = 2000.0
"""
    )
    yield provider
    provider.server.stop()


CHAT = {"model": "chat", "messages": [{"role": "user", "content": "Capital of France?"}]}


async def test_a_chat_is_one_trace_continuing_the_callers_and_passed_upstream(
    make_app: AppFactory, auth: dict[str, str], upstream: OpenAIUpstream
) -> None:
    async with make_app() as (_, client):
        client.headers.update(auth)
        reply = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"traceparent": TRACEPARENT}
        )
        assert reply.status_code == 200, reply.text
        trace = await only_trace(client)

    assert trace["trace_id"] == CALLER_TRACE
    (root,) = trace["spans"]
    assert root["name"] == "POST /v1/chat/completions"
    assert root["parent_span_id"] == CALLER_SPAN  # a child of the caller's span
    (chat,) = root["children"]
    attributes = chat["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "up-model"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert "gen_ai.input.messages" not in attributes  # content is off by default
    # 12 x $1000/M + 3 x $2000/M
    assert chat["cost_usd"] == pytest.approx(0.018)
    assert trace["cost_usd"] == pytest.approx(0.018) and trace["models"] == ["up-model"]
    # The provider was called inside the chat span, in the caller's trace.
    assert upstream.traceparents == [f"00-{CALLER_TRACE}-{chat['span_id']}-01"]


async def test_content_is_recorded_only_when_the_tenant_allows_it(
    make_app: AppFactory, auth: dict[str, str], upstream: OpenAIUpstream
) -> None:
    async with make_app({"ROOST_TRACING__RECORD_CONTENT": "true"}) as (_, client):
        client.headers.update(auth)
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        trace = await only_trace(client)
    (chat,) = named(flatten(trace["spans"]), "chat ")
    assert "Capital of France?" in chat["attributes"]["gen_ai.input.messages"]
    assert "Paris" in chat["attributes"]["gen_ai.output.messages"]


async def test_an_agent_run_with_tool_calls_is_one_trace(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with agent_app(make_app, auth, answer_with_tools) as (_, client, _log):
        thread = await new_thread(client)
        run = await client.post(
            f"/v1/threads/{thread}/runs",
            json={"agent": "calc", "input": "2+40?", "mode": "wait"},
            headers={"traceparent": TRACEPARENT},
        )
        assert run.json()["status"] == "succeeded", run.text
        run_id = run.json()["id"]
        trace = await only_trace(client, run_id=run_id)
        assert (await client.get("/v1/traces", params={"thread_id": thread})).json()["data"]
        assert (await client.get("/v1/traces", params={"agent": "calc"})).json()["data"]

    assert trace["trace_id"] == CALLER_TRACE and trace["run_id"] == run_id
    spans = flatten(trace["spans"])
    (agent,) = named(spans, "invoke_agent calc")
    assert agent["attributes"]["gen_ai.conversation.id"] == thread
    assert ancestors(agent, spans) == [f"POST /v1/threads/{thread}/runs"]
    chats = named(spans, "chat agent")
    assert len(chats) == 2  # the tool call, then the answer
    for chat in chats:
        assert chat["attributes"]["gen_ai.request.model"] == "agent"
        assert chat["attributes"]["gen_ai.usage.input_tokens"] > 0
        assert chat["attributes"]["roost.run_id"] == run_id  # inherited from the run
        assert ancestors(chat, spans)[-2:] == [
            "invoke_agent calc", f"POST /v1/threads/{thread}/runs",
        ]  # fmt: skip
        assert ancestors(chat, spans)[0].startswith("node ")
    (tool,) = named(spans, "execute_tool add")
    assert tool["attributes"]["gen_ai.tool.name"] == "add"
    assert ancestors(tool, spans)[0].startswith("node ")
    assert "invoke_agent calc" in ancestors(tool, spans)
    assert trace["usage"]["input_tokens"] == sum(
        c["attributes"]["gen_ai.usage.input_tokens"] for c in chats
    )


async def test_a_coordinator_run_is_one_trace_over_its_workers(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    gate = Gate()
    gate.release.set()
    async with coordinator_app(make_app, auth, gate) as (_, client):
        response = await client.post(
            "/v1/coordinator/runs",
            json={"task": "an essay on roosts", "model": "function:boss", "mode": "wait"},
        )
        assert response.json()["status"] == "succeeded", response.text
        trace = await only_trace(client, run_id=response.json()["id"])

    spans = flatten(trace["spans"])
    (root,) = trace["spans"]
    assert root["name"] == "POST /v1/coordinator/runs"
    (run,) = named(spans, "invoke_agent ")
    models = sorted(s["attributes"]["gen_ai.request.model"] for s in named(spans, "chat "))
    assert models == ["boss"] * 3 + ["worker"] * 4  # plan, synthesis, check; 2 x 2 workers
    assert len(named(spans, "execute_tool lookup")) == 2
    for span in named(spans, "chat ") + named(spans, "execute_tool "):
        assert run["name"] in ancestors(span, spans)
    assert trace["models"] == ["boss", "worker"] or sorted(trace["models"]) == ["boss", "worker"]


async def test_a_second_tenant_never_sees_the_first_ones_traces(
    make_app: AppFactory, auth: dict[str, str], upstream: OpenAIUpstream
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        mine = await only_trace(client)
        other = await app.state.platform.tenants.create("acme")
        _, other_key = await app.state.platform.api_keys.create(other.id, "acme")
        theirs = {"Authorization": f"Bearer {other_key}"}

        listed = await client.get("/v1/traces", headers=theirs)
        assert listed.status_code == 200 and listed.json()["data"] == []
        hidden = await client.get(f"/v1/traces/{mine['trace_id']}", headers=theirs)
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"
        # A trace id they make up themselves continues in their own store only.
        await client.post("/v1/chat/completions", json=CHAT,
                          headers={**theirs, "traceparent": f"00-{mine['trace_id']}-{CALLER_SPAN}-01"})  # fmt: skip
        again = await only_trace(client)
        assert again["span_count"] == mine["span_count"]


async def test_query_errors_are_problem_json(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (_, client):
        client.headers.update(auth)
        bad_cursor = await client.get("/v1/traces", params={"cursor": "!!"})
        assert bad_cursor.status_code == 400
        assert bad_cursor.json()["type"] == "urn:roost:problem:invalid_request"
        bad_status = await client.get("/v1/traces", params={"status": "maybe"})
        assert bad_status.status_code == 400
        assert bad_status.headers["content-type"] == "application/problem+json"
        unauthenticated = await client.get("/v1/traces", headers={"Authorization": "Bearer x"})
        assert unauthenticated.status_code == 401


async def test_traces_page_with_a_cursor(
    make_app: AppFactory, auth: dict[str, str], upstream: OpenAIUpstream
) -> None:
    async with make_app() as (_, client):
        client.headers.update(auth)
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        first = (await client.get("/v1/traces", params={"limit": 2, "model": "up-model"})).json()
        assert len(first["data"]) == 2 and first["next_cursor"]
        rest = await client.get(
            "/v1/traces", params={"limit": 2, "model": "up-model", "cursor": first["next_cursor"]}
        )
        ids = [t["trace_id"] for t in first["data"] + rest.json()["data"]]
        assert len(set(ids)) == 3 and rest.json()["next_cursor"] is None


_ = httpx  # the client type of the fixtures
