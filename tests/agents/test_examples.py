"""The example agents of examples/agents/ on the real bundled model (SmolLM2-135M), with
the answers docs/agents.md shows. Greedy decoding and small max_tokens keep each run to
a few model turns; the grammar of the tool call (and of the answer, where the spec has an
output_schema) is what makes a 135M model's result usable at all."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from roost.agents.spec import read_spec_file
from roost.engine import Engine
from tests.server.conftest import AppFactory

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"


@pytest.fixture
async def app_client(
    make_app: AppFactory, auth: dict[str, str], engine: Engine
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    def use_engine(app: FastAPI) -> None:
        app.state.engine = engine

    async with make_app(customize=use_engine) as (app, client):
        client.headers.update(auth)
        yield app, client


async def run_example(
    client: httpx.AsyncClient, spec_file: str, question: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    spec = read_spec_file(EXAMPLES / spec_file)
    created = await client.post("/v1/agents", json={"spec": spec})
    assert created.status_code == 201, created.text
    thread = (await client.post("/v1/threads", json={})).json()["id"]
    body = {"agent": spec["name"], "input": question, "mode": "wait"}
    run = (await client.post(f"/v1/threads/{thread}/runs", json=body)).json()
    messages = (await client.get(f"/v1/threads/{thread}")).json()["values"]["messages"]
    return run, messages


def first_call(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert messages[1]["role"] == "assistant", messages
    call = messages[1]["tool_calls"][0]
    return call["name"], json.loads(call["arguments"])


async def test_calculator_computes_instead_of_guessing(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    run, messages = await run_example(app_client[1], "calculator.yaml", "What is 17 times 23?")
    assert run["status"] == "succeeded", run
    assert first_call(messages) == ("calculate", {"expression": "17*23"})
    assert "391" in run["output"]
    assert run["usage"]["model_calls"] == 2  # one call, one answer: no loop


async def test_unit_converter_answers_with_the_tools_result(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    question = "Convert 26.2 miles to kilometers."
    run, messages = await run_example(app_client[1], "unit-converter.yaml", question)
    assert run["status"] == "succeeded", run
    assert first_call(messages) == ("convert_units", {"conversion": "26.2 miles to kilometers"})
    assert run["output"] == "26.2 miles is 42.1648 kilometers"


async def test_kb_answerer_searches_first_and_cites_a_source(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    await app.state.memory.knowledge.ensure_collection(app.state.default_tenant_id, "default")
    report = await app.state.memory.knowledge.add_path(
        app.state.default_tenant_id, "default", EXAMPLES / "knowledge"
    )
    assert len(report.added) == 2
    run, messages = await run_example(client, "kb-answerer.yaml", "What is a roost?")
    assert run["status"] == "succeeded", run
    name, _ = first_call(messages)
    assert name == "search_knowledge"
    assert "[birds.md:" in messages[2]["content"]  # the tool result names its sources
    assert run["output"]["source"] == "birds.md"
    assert "birds rest or sleep at night" in run["output"]["answer"]
