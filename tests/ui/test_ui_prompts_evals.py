"""The prompts, evaluations and experiments pages over HTTP: versions, labels and diffs
(labels moved by owners only, with real keys of each role), an evaluation's per-item
results, an experiment's per-variant report, another tenant's objects answering 404, and
user content (templates, dataset items) shown as text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from roost.security.principal import Role
from tests.ui.conftest import UiServer, csrf_of, sign_in


@contextmanager
def _signed_in(ui: UiServer, key: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the UI with a real API key, through the form."""
    with httpx.Client(base_url=ui.url) as client:
        sign_in(client, key)
        yield client


def test_prompt_versions_labels_and_diff(ui_server: UiServer, seeded: dict[str, Any]) -> None:
    with _signed_in(ui_server, ui_server.key_for(Role.VIEWER)) as client:
        listing = client.get("/ui/prompts")
        assert listing.status_code == 200 and 'href="/ui/prompts/greet"' in listing.text
        page = client.get("/ui/prompts/greet?a=1&b=2")
        assert page.status_code == 200
        assert "-Hello {{ name }}, be brief." in page.text  # the diff, line by line
        assert "+Hi {{ name }} &lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page.text
        assert "<script>window.__pwned" not in page.text
        assert 'id="version-1"' in page.text and "production" in page.text
        # A viewer sees no label form and is refused when posting one anyway.
        assert 'action="/ui/prompts/greet/labels"' not in page.text
        refused = client.post(
            "/ui/prompts/greet/labels",
            data={"csrf": csrf_of(page.text), "label": "production", "version": "2"},
        )
        assert refused.status_code == 403
        assert client.get("/ui/prompts/greet?a=1&b=9").status_code == 400


def test_only_an_owner_moves_a_label_and_the_move_is_audited(
    ui_server: UiServer, seeded: dict[str, Any]
) -> None:
    with _signed_in(ui_server, ui_server.key_for(Role.MEMBER)) as member:
        page = member.get("/ui/prompts/greet")
        assert 'action="/ui/prompts/greet/labels"' not in page.text
        refused = member.post(
            "/ui/prompts/greet/labels",
            data={"csrf": csrf_of(page.text), "label": "staging", "version": "2"},
        )
        assert refused.status_code == 403
    with _signed_in(ui_server, ui_server.key_for(Role.OWNER)) as owner:
        page = owner.get("/ui/prompts/greet")
        token = csrf_of(page.text)
        bad = owner.post(
            "/ui/prompts/greet/labels", data={"csrf": token, "label": "latest", "version": "1"}
        )
        assert bad.status_code == 400  # 'latest' is not a label one may move
        moved = owner.post(
            "/ui/prompts/greet/labels", data={"csrf": token, "label": "staging", "version": "2"}
        )
        assert moved.status_code == 303 and moved.headers["location"] == "/ui/prompts/greet"
    with ui_server.api() as api:
        assert "staging" in api.get("/v1/prompts/greet?ref=staging").json()["labels"]
        action = "http:POST /ui/prompts/{name}/labels"
        records = api.get("/v1/audit", params={"action": action}).json()["data"]
    owner = f"key:{ui_server.key_for(Role.OWNER).split('-')[1]}"
    member = f"key:{ui_server.key_for(Role.MEMBER).split('-')[1]}"
    seen = {(r["actor"], r["outcome"], r["target"]) for r in records}
    assert (owner, "ok", "name=greet") in seen  # the move
    assert (owner, "rejected", "name=greet") in seen  # 'latest' is no label to move
    assert (member, "denied", "name=greet") in seen  # a member may not


def test_an_evaluation_shows_each_items_result(ui_server: UiServer, seeded: dict[str, Any]) -> None:
    with _signed_in(ui_server, ui_server.key_for(Role.VIEWER)) as client:
        listing = client.get("/ui/evals")
        assert listing.status_code == 200 and seeded["eval_id"] in listing.text
        assert 'href="/ui/datasets/sums"' in listing.text
        page = client.get(f"/ui/evals/{seeded['eval_id']}")
        assert page.status_code == 200
        assert page.text.count('<tr class="result">') == 2
        assert "passed" in page.text and "failed" in page.text  # 42 matches, 43 does not
        assert "1 of 2" in page.text  # the summary: one item of two passed
        assert "<script>window.__pwned" not in page.text
        dataset = client.get("/ui/datasets/sums")
        assert dataset.status_code == 200 and dataset.text.count('<tr class="item">') == 2
        assert "say &lt;script&gt;window.__pwned = 1&lt;/script&gt;" in dataset.text
        assert "<script>window.__pwned" not in dataset.text


def test_an_experiment_reports_per_variant(ui_server: UiServer, seeded: dict[str, Any]) -> None:
    with _signed_in(ui_server, ui_server.key_for(Role.VIEWER)) as client:
        assert 'href="/ui/experiments/calc-ab"' in client.get("/ui/experiments").text
        page = client.get("/ui/experiments/calc-ab")
    assert page.status_code == 200
    assert page.text.count('<tr class="variant">') == 2
    assert "function:calc-b" in page.text
    assert "100.0 %" in page.text  # every run of each variant succeeded
    assert "CI " in page.text  # intervals shown
    assert "fisher_exact" in page.text  # the success rates compared


def test_another_tenants_prompts_evals_and_experiments_are_not_found(
    ui_server: UiServer, seeded: dict[str, Any]
) -> None:
    with _signed_in(ui_server, ui_server.other_key) as client:
        for path in (
            "/ui/prompts/greet",
            f"/ui/evals/{seeded['eval_id']}",
            "/ui/datasets/sums",
            "/ui/experiments/calc-ab",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, path
        assert "greet" not in client.get("/ui/prompts").text
        assert seeded["eval_id"] not in client.get("/ui/evals").text
        # The other tenant's owner cannot move this tenant's label either.
        token = csrf_of(client.get("/ui/prompts").text)
        moved = client.post(
            "/ui/prompts/greet/labels", data={"csrf": token, "label": "x", "version": "1"}
        )
        assert moved.status_code == 404
