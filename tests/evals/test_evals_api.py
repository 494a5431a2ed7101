"""Datasets and evaluations through HTTP with scripted models: versions on change, each
item a durable run, every scorer kind, tenant isolation, bad input."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI

from roost.llm.testing import CallInfo, FunctionModel
from tests.server.conftest import AppFactory

SCORER_ENV = {"ROOST_EVALS__PYTHON_SCORERS": json.dumps(
    ["tests.evals.scorers_for_tests:mentions_expected"])}  # fmt: skip


def doubler(info: CallInfo) -> str:
    """Doubles the number it is asked about, except 3 (a wrong answer to score)."""
    number = int(info.messages[-1].text.split()[-1])
    return str(number * 2 if number != 3 else 7)


def judge(info: CallInfo) -> str:
    prompt = info.messages[-1].text
    answer = prompt.split("Answer to grade:")[1]
    expected = prompt.split("Expected answer:")[1].split("\n")[0].strip()
    return "PASS" if answer.strip().startswith(expected) else "FAIL"


ITEMS = [{"input": f"double {n}", "expected": str(2 * n)} for n in range(1, 6)]


async def setup(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.llm.router.registry.register(FunctionModel(doubler, "function:agent"))
    app.state.llm.router.registry.register(FunctionModel(judge, "function:judge"))
    spec = {"name": "doubler", "model": "function:agent"}
    assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
    created = await client.post("/v1/datasets", json={"name": "doubles", "items": ITEMS[:3]})
    assert created.status_code == 201, created.text


async def evaluate(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/evals", json={"dataset": "doubles", "mode": "wait", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["status"] == "succeeded", result
    return result


async def test_datasets_are_versioned_on_change(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        await setup(app, client)
        same = await client.post("/v1/datasets", json={"name": "doubles", "items": ITEMS[:3]})
        assert same.json()["version"] == 1 and same.json()["created"] is False
        added = await client.post("/v1/datasets/doubles/items", json={"items": ITEMS[3:]})
        assert added.json()["version"] == 2 and added.json()["item_count"] == 5
        old = (await client.get("/v1/datasets/doubles", params={"version": 1})).json()
        assert [i["input"] for i in old["items"]] == ["double 1", "double 2", "double 3"]
        newest = (await client.get("/v1/datasets/doubles")).json()
        assert newest["version"] == 2 and len(newest["items"]) == 5
        listed = (await client.get("/v1/datasets")).json()["data"]
        assert [(d["name"], d["version"], d["item_count"]) for d in listed] == [("doubles", 2, 5)]

        tenant = await app.state.platform.tenants.create("acme")
        _, key = await app.state.platform.api_keys.create(tenant.id, "acme")
        acme = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/v1/datasets/doubles", headers=acme)).status_code == 404
        assert (await client.post("/v1/datasets/doubles/items", headers=acme,
                                  json={"items": ITEMS[:1]})).status_code == 404  # fmt: skip
        assert (await client.get("/v1/datasets", headers=acme)).json()["data"] == []
        for bad in (
            {"name": "x", "items": [{"expected": 1}]},
            {"name": "Bad Name"},
            {"name": "x", "items": "nope"},
        ):
            response = await client.post("/v1/datasets", json=bad)
            assert response.status_code == 400, response.text


async def test_an_agent_is_evaluated_item_by_item_as_durable_runs(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app(env=SCORER_ENV) as (app, client):
        client.headers.update(auth)
        await setup(app, client)
        exact = await evaluate(client, target={"agent": "doubler"})
        assert [r["passed"] for r in exact["results"]] == [True, True, False]
        assert [r["output"] for r in exact["results"]] == ["2", "4", "7"]
        summary = exact["summary"]
        assert summary["passed"] == 2 and summary["items"] == 3
        assert summary["pass_rate"]["rate"] == 2 / 3
        low, high = summary["pass_rate"]["ci95"]
        assert 0.05 < low < 2 / 3 < high < 1  # Wilson interval at n=3
        for result in exact["results"]:  # every item ran as a run of the tenant
            run = (await client.get(f"/v1/runs/{result['run_id']}")).json()
            assert run["agent"] == "doubler" and run["status"] == "succeeded"

        regex = await evaluate(client, target={"agent": "doubler"},
                               scorer={"type": "regex", "pattern": r"^[246]$"})  # fmt: skip
        assert [r["passed"] for r in regex["results"]] == [True, True, False]
        schema = await evaluate(client, target={"agent": "doubler"},
                                scorer={"type": "json_schema",
                                        "schema": {"type": "integer", "maximum": 5}})  # fmt: skip
        assert [r["passed"] for r in schema["results"]] == [True, True, False]
        python = await evaluate(
            client,
            target={"agent": "doubler"},
            scorer={
                "type": "python",
                "entry_point": "tests.evals.scorers_for_tests:mentions_expected",
            },
        )
        assert [r["passed"] for r in python["results"]] == [True, True, False]
        assert python["results"][2]["reason"] == "looked for '6'"
        judged = await evaluate(
            client,
            target={"agent": "doubler"},
            scorer={"type": "llm_judge", "model": "function:judge"},
        )
        assert [r["passed"] for r in judged["results"]] == [True, True, False]
        assert judged["results"][0]["reason"] == "judge: PASS"

        shown = (await client.get(f"/v1/evals/{exact['id']}")).json()
        assert shown["summary"] == summary and shown["completed"] == 3
        listed = (await client.get("/v1/evals")).json()["data"]
        assert len(listed) == 5 and listed[-1]["id"] == exact["id"]


async def test_a_prompt_and_model_are_evaluated(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        await setup(app, client)
        await client.post("/v1/prompts", json={"name": "math", "template": "You double numbers.",
                                               "labels": ["production"]})  # fmt: skip
        result = await evaluate(client, target={"prompt": "math@production",
                                                "model": "function:agent"})  # fmt: skip
        assert result["summary"]["passed"] == 2
        assert result["target"]["run_agent"] == "eval-math"
        run = (await client.get(f"/v1/runs/{result['results'][0]['run_id']}")).json()
        assert run["agent"] == "eval-math"


async def test_bad_evaluations_are_refused(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        await setup(app, client)
        for body, status in (
            ({"target": {"agent": "doubler"}, "scorer": {"type": "python",
                                                          "entry_point": "os:system"}}, 400),
            ({"target": {"agent": "doubler"}, "scorer": {"type": "magic"}}, 400),
            ({"target": {"agent": "doubler"}, "scorer": {"type": "regex", "pattern": "("}}, 400),
            ({"target": {"agent": "doubler", "prompt": "math"}}, 400),
            ({"target": {"prompt": "math"}}, 400),
            ({"target": {"agent": "nobody"}}, 404),
            ({"target": {"agent": "doubler"}, "dataset_version": 9}, 404),
        ):  # fmt: skip
            response = await client.post("/v1/evals", json={"dataset": "doubles", **body})
            assert response.status_code == status, (body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        started = await client.post(
            "/v1/evals", json={"dataset": "doubles", "target": {"agent": "doubler"}}
        )
        assert started.status_code == 202
        tenant = await app.state.platform.tenants.create("acme")
        _, key = await app.state.platform.api_keys.create(tenant.id, "acme")
        other = await client.get(
            f"/v1/evals/{started.json()['id']}", headers={"Authorization": f"Bearer {key}"}
        )
        assert other.status_code == 404
        # Let it finish: this test is about refusals, not about stopping a server mid-run.
        done = await client.get(f"/v1/evals/{started.json()['id']}", params={"wait_s": 60})
        assert done.json()["status"] == "succeeded", done.text
