"""Done-when of issue 21 (items 3-4) with the bundled model, over HTTP against a real
server: a 20-item evaluation, and a two-variant prompt experiment with user feedback,
each reported per variant with intervals and a significance figure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roost.config import load_settings
from roost.engine import Engine
from roost.server.app import create_app
from tests.api.conftest import engine  # noqa: F401
from tests.support.uvicorn_thread import ThreadedServer

KEY = "evals-model-key-0123456789abcdef"
CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Japan": "Tokyo", "China": "Beijing", "Russia": "Moscow", "Egypt": "Cairo",
    "Greece": "Athens", "Portugal": "Lisbon", "Austria": "Vienna", "Ireland": "Dublin",
    "Norway": "Oslo", "Poland": "Warsaw", "Canada": "Ottawa", "Peru": "Lima",
    "Cuba": "Havana", "Kenya": "Nairobi", "Sweden": "Stockholm", "Belgium": "Brussels",
}  # fmt: skip


@pytest.fixture
def served(engine: Engine, roost_home: Path) -> Iterator[httpx.Client]:  # noqa: F811
    settings = load_settings(env={"ROOST_HOME": str(roost_home), "ROOST_API_KEY": KEY})
    app = create_app(settings)
    app.state.engine = engine
    server = ThreadedServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=600,
                          headers={"Authorization": f"Bearer {KEY}"}) as client:  # fmt: skip
            yield client
    finally:
        server.stop()


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code < 300, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.slow
def test_evaluation_and_experiment_with_the_bundled_model(
    served: httpx.Client,
    engine: Engine,  # noqa: F811
) -> None:
    model = f"local:{engine.model_name}"
    config = {"temperature": 0.0, "max_tokens": 12}
    post(served, "/v1/prompts", {"name": "capital", "labels": ["production"], "config": config,
         "template": "Answer with the name of the capital city only."})  # fmt: skip
    post(served, "/v1/prompts", {"name": "capital", "config": config,
         "template": "You are a geography teacher. Answer in one short sentence."})  # fmt: skip
    post(served, "/v1/agents", {"spec": {"name": "geo", "model": model,
                                         "prompt": "capital@production"}})  # fmt: skip
    items = [{"input": f"What is the capital of {country}?", "expected": f"(?i){city}"}
             for country, city in CAPITALS.items()]  # fmt: skip
    assert post(served, "/v1/datasets", {"name": "capitals", "items": items})["item_count"] == 20

    evaluation = post(served, "/v1/evals", {"dataset": "capitals", "target": {"agent": "geo"},
                                           "scorer": {"type": "regex"}, "mode": "wait"})  # fmt: skip
    assert evaluation["status"] == "succeeded", evaluation
    assert len(evaluation["results"]) == 20
    assert all(r["status"] == "scored" and r["run_id"] for r in evaluation["results"])
    summary = evaluation["summary"]
    rate = summary["pass_rate"]
    assert rate["count"] == 20 and rate["ci95"][0] <= rate["rate"] <= rate["ci95"][1]
    passed = [r["passed"] for r in evaluation["results"]]
    assert summary["passed"] == sum(passed)
    print("\nevaluation:", json.dumps(summary))

    post(
        served,
        "/v1/experiments",
        {
            "name": "tone",
            "agent": "geo",
            "variants": [
                {"name": "terse", "prompt": "capital@1"},
                {"name": "teacher", "prompt": "capital@2"},
            ],
        },
    )
    for country, city in CAPITALS.items():
        thread = post(served, "/v1/threads", {})["id"]
        run = post(served, f"/v1/threads/{thread}/runs",
                   {"agent": "geo", "input": f"What is the capital of {country}?",
                    "mode": "wait"})  # fmt: skip
        assert run["status"] == "succeeded", run
        # The user's verdict: was the capital named?
        good = 1.0 if city.lower() in str(run["output"]).lower() else 0.0
        post(served, f"/v1/runs/{run['id']}/feedback", {"score": good})
    report = served.get("/v1/experiments/tone").json()
    variants = {v["name"]: v for v in report["variants_report"]}
    assert sum(v["runs"] for v in variants.values()) == 20
    assert all(v["runs"] > 0 for v in variants.values()), variants
    for variant in variants.values():
        assert variant["success"]["ci95"] is not None
        assert variant["feedback"]["count"] == variant["runs"]
        assert variant["latency_ms"]["mean"] > 0
    significance = report["significance"]
    assert significance["feedback"]["test"] == "fisher_exact"
    assert 0.0 <= significance["feedback"]["p_value"] <= 1.0
    assert significance["latency_ms"]["test"] == "welch_t"
    print("experiment:", json.dumps({"variants": report["variants_report"],
                                     "significance": significance}))  # fmt: skip
