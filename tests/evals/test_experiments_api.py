"""Online experiments through HTTP: threads split by a stable hash with weights, runs
carry their variant, feedback on runs, a per-variant report with intervals and p-values."""

from __future__ import annotations

from collections import Counter

from roost.evals.experiments import VariantSpec, assign
from roost.evals.stats import compare_means, compare_rates, mean, wilson
from roost.llm.testing import CallInfo, FunctionModel
from tests.observe.trace_helpers import flatten, named, only_trace
from tests.server.conftest import AppFactory


def by_prompt(info: CallInfo) -> str:
    """Succeeds under the "good" prompt; fails (a refusal) under the "terse" one."""
    return "glad to help" if "good" in info.messages[0].text else "no"


def test_assignment_is_deterministic_and_follows_the_weights() -> None:
    variants = [VariantSpec(name="a", weight=3, model="m1"), VariantSpec(name="b", model="m2")]
    picks = Counter(assign("exp", f"thread-{i}", variants).name for i in range(4000))
    assert 0.72 < picks["a"] / 4000 < 0.78  # weight 3:1
    assert all(assign("exp", f"thread-{i}", variants) == assign("exp", f"thread-{i}", variants)
               for i in range(50))  # fmt: skip
    # Another experiment shuffles threads independently.
    other = [assign("exp2", f"thread-{i}", variants).name for i in range(200)]
    assert other != [assign("exp", f"thread-{i}", variants).name for i in range(200)]


def test_intervals_and_tests() -> None:
    low, high = wilson(0, 10) or (None, None)
    assert low == 0.0 and 0.25 < high < 0.35  # Wilson: informative even at 0 %
    assert wilson(0, 0) is None
    assert mean([1.0, 2.0, 3.0])["ci95"][0] < 2.0 < mean([1.0, 2.0, 3.0])["ci95"][1]
    assert compare_rates([(10, 10), (0, 10)])["p_value"] < 0.001
    assert compare_rates([(5, 10), (5, 10)])["p_value"] == 1.0
    assert compare_rates([(5, 10), (5, 10), (9, 10)])["test"] == "chi2"
    assert compare_means([[1.0, 1.0], [1.0, 1.0]])["p_value"] == 1.0


async def test_experiment_splits_threads_and_reports_per_variant(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        app.state.llm.router.registry.register(FunctionModel(by_prompt, "function:agent"))
        await client.post("/v1/prompts", json={"name": "tone", "template": "be good",
                                               "labels": ["production"]})  # fmt: skip
        await client.post("/v1/prompts", json={"name": "tone", "template": "be terse"})
        spec = {"name": "helper", "model": "function:agent", "prompt": "tone@production",
                "output_schema": None}  # fmt: skip
        spec.pop("output_schema")
        assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        experiment = {
            "name": "tone-test",
            "agent": "helper",
            "variants": [
                {"name": "control", "prompt": "tone@1"},
                {"name": "terse", "prompt": "tone@2"},
            ],
        }
        created = await client.post("/v1/experiments", json=experiment)
        assert created.status_code == 201, created.text
        again = await client.post("/v1/experiments", json={**experiment, "name": "second"})
        assert again.status_code == 409  # one active experiment per agent

        runs: dict[str, list[str]] = {"control": [], "terse": []}
        # Threads get random ids: start them until each variant has four (a 1:1 split).
        while min(len(r) for r in runs.values()) < 4 and sum(len(r) for r in runs.values()) < 40:
            thread = (await client.post("/v1/threads", json={})).json()["id"]
            run = await client.post(
                f"/v1/threads/{thread}/runs",
                json={"agent": "helper", "input": "hi", "mode": "wait"},
            )
            body = run.json()
            assert run.status_code == 200, run.text
            variant = "control" if body["output"] == "glad to help" else "terse"
            runs[variant].append(body["id"])
            good = 1.0 if variant == "control" else 0.0
            feedback = await client.post(
                f"/v1/runs/{body['id']}/feedback", json={"score": good, "comment": "auto"}
            )
            assert feedback.status_code == 201, feedback.text
            # The same thread stays in its variant.
            second = await client.post(
                f"/v1/threads/{thread}/runs",
                json={"agent": "helper", "input": "again", "mode": "wait"},
            )
            assert second.json()["output"] == body["output"]
        assert min(len(r) for r in runs.values()) >= 4

        trace = await only_trace(client, run_id=runs["terse"][0])
        (span,) = named(flatten(trace["spans"]), "invoke_agent")
        assert span["attributes"]["roost.experiment.name"] == "tone-test"
        assert span["attributes"]["roost.experiment.variant"] == "terse"
        assert span["attributes"]["roost.prompt.version"] == 2

        report = (await client.get("/v1/experiments/tone-test")).json()
        rows = {v["name"]: v for v in report["variants_report"]}
        assert rows["control"]["runs"] == 2 * len(runs["control"])
        assert (
            rows["control"]["feedback"]["rate"] == 1.0 and rows["terse"]["feedback"]["rate"] == 0.0
        )
        assert rows["control"]["success"]["rate"] == 1.0  # every run settled as succeeded
        assert rows["control"]["latency_ms"]["mean"] is not None
        assert rows["control"]["cost_usd"]["count"] == rows["control"]["runs"]
        significance = report["significance"]
        assert significance["feedback"]["test"] == "fisher_exact"
        assert significance["feedback"]["p_value"] < 0.05  # all good vs all bad, 4+ runs each
        assert significance["success"]["p_value"] == 1.0  # both always succeed
        assert significance["latency_ms"]["test"] == "welch_t"

        stopped = await client.post("/v1/experiments/tone-test/stop")
        assert stopped.json()["status"] == "stopped"
        thread = (await client.post("/v1/threads", json={})).json()["id"]
        after = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "helper", "input": "hi", "mode": "wait"}
        )
        assert after.json()["output"] == "glad to help"  # back to the spec's prompt@production

        # Another tenant: no experiment, no feedback on our runs; bad input is a 400.
        tenant = await app.state.platform.tenants.create("acme")
        _, key = await app.state.platform.api_keys.create(tenant.id, "acme")
        acme = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/v1/experiments/tone-test", headers=acme)).status_code == 404
        assert (await client.post(f"/v1/runs/{runs['control'][0]}/feedback", headers=acme,
                                  json={"score": 1})).status_code == 404  # fmt: skip
        assert (await client.get(f"/v1/runs/{runs['control'][0]}/feedback",
                                 headers=acme)).status_code == 404  # fmt: skip
        for bad in ({"score": 2}, {"score": "good"}, {}):
            response = await client.post(f"/v1/runs/{runs['control'][0]}/feedback", json=bad)
            assert response.status_code == 400
        for bad_experiment in (
            {**experiment, "name": "x", "variants": experiment["variants"][:1]},
            {**experiment, "name": "y", "variants": [{"name": "a"}, {"name": "b", "model": "m"}]},
        ):
            assert (await client.post("/v1/experiments", json=bad_experiment)).status_code == 400
        missing = {**experiment, "name": "z", "agent": "nobody"}
        assert (await client.post("/v1/experiments", json=missing)).status_code == 404
        no_prompt = {
            **experiment,
            "name": "w",
            "variants": [{"name": "a", "prompt": "tone@1"}, {"name": "b", "prompt": "tone@9"}],
        }
        assert (await client.post("/v1/experiments", json=no_prompt)).status_code == 404
        no_model = {
            **experiment,
            "name": "v",
            "variants": [
                {"name": "a", "prompt": "tone@1"},
                {"name": "b", "model": "nowhere:model"},
            ],
        }
        refused = await client.post("/v1/experiments", json=no_model)
        assert refused.status_code == 400 and "nowhere" in refused.text
