"""``/v1/prompts`` through HTTP: versions, labels, rendering, tenant isolation, bad input;
an agent whose spec says ``prompt: name@label`` runs with that version, sees a moved
label at its next run, and its run's trace span names the version."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI

from roost.llm.testing import CallInfo, FunctionModel
from tests.observe.trace_helpers import flatten, named, only_trace
from tests.server.conftest import AppFactory


def describe_call(info: CallInfo) -> str:
    """Answers with what it was given: the system prompt, model settings."""
    system = info.messages[0].text
    return f"system={system} temperature={info.settings.temperature}"


async def other_tenant(app: FastAPI) -> dict[str, str]:
    tenant = await app.state.platform.tenants.create("acme")
    _, key = await app.state.platform.api_keys.create(tenant.id, "acme")
    return {"Authorization": f"Bearer {key}"}


async def run_agent(client: httpx.AsyncClient, agent: str, **extra: object) -> dict[str, object]:
    thread = (await client.post("/v1/threads", json={})).json()["id"]
    run = await client.post(
        f"/v1/threads/{thread}/runs",
        json={"agent": agent, "input": "hello", "mode": "wait", **extra},
    )
    assert run.status_code == 200, run.text
    body: dict[str, object] = run.json()
    return body


async def test_prompt_versions_labels_and_render(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        first = await client.post("/v1/prompts", json={
            "name": "support", "template": "You help {{ customer }}.",
            "config": {"temperature": 0.1}, "labels": ["production"],
        })  # fmt: skip
        assert first.status_code == 201, first.text
        assert first.json()["version"] == 1 and first.json()["variables"] == ["customer"]
        second = await client.post("/v1/prompts", json={
            "name": "support", "template": "You help {{ customer }} kindly.", "labels": ["staging"],
        })  # fmt: skip
        assert second.json()["version"] == 2 and second.json()["created"] is True
        got = await client.get("/v1/prompts/support", params={"ref": "production"})
        assert got.json()["version"] == 1 and got.json()["config"] == {"temperature": 0.1}
        rendered = await client.post(
            "/v1/prompts/support/render", json={"ref": "staging", "variables": {"customer": "Ada"}}
        )
        assert rendered.json()["text"] == "You help Ada kindly."
        moved = await client.post("/v1/prompts/support/labels", json={"label": "production",
                                                                      "version": 2})  # fmt: skip
        assert sorted(moved.json()["labels"]) == ["production", "staging"]
        versions = (await client.get("/v1/prompts/support/versions")).json()["data"]
        assert [v["version"] for v in versions] == [2, 1]
        listed = (await client.get("/v1/prompts")).json()["data"]
        assert [(p["name"], p["version"]) for p in listed] == [("support", 2)]

        # Bad input: 4xx in problem+json, never a 500.
        for response in (
            await client.post("/v1/prompts", json={"name": "x", "template": "{% if %}"}),
            await client.post("/v1/prompts", json={"name": "Bad Name", "template": "t"}),
            await client.post("/v1/prompts/support/render", json={"variables": {}}),
            await client.post("/v1/prompts/support/labels", json={"label": "latest",
                                                                   "version": 1}),
            await client.post("/v1/prompts", json={"name": "y", "template": "t",
                                                   "config": {"temperature": 9}}),
        ):  # fmt: skip
            assert response.status_code == 400, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        sandboxed = await client.post(
            "/v1/prompts",
            json={"name": "escape", "template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
        )
        assert sandboxed.status_code == 201
        refused = await client.post("/v1/prompts/escape/render", json={})
        assert refused.status_code == 400 and "sandbox" in refused.json()["detail"]
        assert (await client.get("/v1/prompts/support", params={"ref": "nope"})).status_code == 404

        # Another tenant: the same name is free for it, and it cannot see ours.
        acme = await other_tenant(app)
        assert (await client.get("/v1/prompts/support", headers=acme)).status_code == 404
        assert (
            await client.post(
                "/v1/prompts/support/labels", headers=acme, json={"label": "x", "version": 1}
            )
        ).status_code == 404
        own = await client.post(
            "/v1/prompts", headers=acme, json={"name": "support", "template": "theirs"}
        )
        assert own.json()["version"] == 1
        ours = await client.get("/v1/prompts/support")
        assert ours.json()["template"] == "You help {{ customer }} kindly."


async def test_an_agent_runs_with_its_labelled_prompt(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        app.state.llm.router.registry.register(FunctionModel(describe_call, "function:agent"))
        app.state.llm.router.registry.register(FunctionModel(describe_call, "function:other"))
        await client.post("/v1/prompts", json={
            "name": "support", "template": "v1 for {{ customer }}", "labels": ["production"],
            "config": {"temperature": 0.3},
        })  # fmt: skip
        await client.post("/v1/prompts", json={
            "name": "support", "template": "v2 for {{ customer }}",
            "config": {"model": "function:other", "temperature": 0.7},
        })  # fmt: skip
        spec = {"name": "helper", "model": "function:agent", "prompt": "support@production",
                "variables": {"customer": "Ada"}}  # fmt: skip
        created = await client.post("/v1/agents", json={"spec": spec})
        assert created.status_code == 201, created.text

        run = await run_agent(client, "helper")
        assert run["status"] == "succeeded", run
        assert run["output"] == "system=v1 for Ada temperature=0.3"
        trace = await only_trace(client, run_id=str(run["id"]))
        (span,) = named(flatten(trace["spans"]), "invoke_agent")
        assert span["attributes"]["roost.prompt.name"] == "support"
        assert span["attributes"]["roost.prompt.version"] == 1
        assert span["attributes"]["roost.prompt.reference"] == "support@production"

        # The label moves: the next run starts with version 2, its model and temperature.
        await client.post("/v1/prompts/support/labels", json={"label": "production", "version": 2})
        run = await run_agent(client, "helper", variables={"customer": "Bo"})
        assert run["output"] == "system=v2 for Bo temperature=0.7"
        chats = named(flatten((await only_trace(client, run_id=str(run["id"])))["spans"]), "chat")
        assert {c["attributes"]["gen_ai.request.model"] for c in chats} == {"other"}

        # A missing variable is refused before the run is queued.
        spec = {"name": "bare", "model": "function:agent", "prompt": "support@production"}
        assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        missing = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "bare", "input": "hi", "mode": "wait"}
        )
        assert missing.status_code == 400 and "customer" in missing.json()["detail"]
        bad = {"name": "broken", "model": "function:agent", "prompt": "Not A Ref"}
        assert (await client.post("/v1/agents", json={"spec": bad})).status_code == 400


async def test_a_coordinator_subtask_runs_with_its_agents_prompt(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        app.state.llm.router.registry.register(FunctionModel(describe_call, "function:agent"))
        await client.post("/v1/prompts", json={"name": "support", "labels": ["production"],
                                               "template": "managed for {{ customer }}"})  # fmt: skip
        spec = {"name": "helper", "model": "function:agent", "prompt": "support@production",
                "variables": {"customer": "Ada"}, "description": "helps"}  # fmt: skip
        assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        plan = {"subtasks": [{"id": "one", "description": "help Ada", "agent": "helper"}]}
        response = await client.post("/v1/coordinator/runs", json={
            "task": "help", "plan": plan, "model": "function:agent", "max_revisions": 0,
            "mode": "wait"})  # fmt: skip
        assert response.status_code == 200, response.text
        run = response.json()
        assert run["status"] == "succeeded", run
        assert "system=managed for Ada" in json.dumps(run["output"]["results"])
