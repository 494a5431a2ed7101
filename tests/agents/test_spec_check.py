"""Agent specs checked completely at create time: every problem at once, each with
where it is, the real pattern, and a suggestion for a misspelling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roost.agents.spec import parse_spec
from roost.agents.spec_check import Offer, offer_problems, shape_problems
from roost.errors import InvalidRequest
from tests.server.conftest import AppFactory

OFFER = Offer(
    groups=["chat"],
    providers=["openai", "anthropic"],
    local_models=["smollm2-135m-instruct"],
    tools=["read_file", "list_dir", "calculate"],
    mcp_servers=["github"],
)


def problems(data: dict[str, Any]) -> dict[str, str]:
    """Problems by where they are (several at one place joined with ' | ')."""
    found: dict[str, str] = {}
    for problem in shape_problems(data) + offer_problems(data, OFFER):
        found[problem.loc] = " | ".join(filter(None, [found.get(problem.loc), problem.message]))
    return found


def test_a_good_spec_has_no_problem() -> None:
    spec = {"name": "ok", "model": "chat", "tools": ["read_*", "github_create_issue"],
            "instructions": "You are {persona}.", "first_tool_choice": "read_file",
            "route": {"candidates": ["chat", "openai:gpt-4.1-mini"]}}  # fmt: skip
    assert problems(spec) == {}


def test_every_problem_is_listed_at_once() -> None:
    found = problems({
        "name": "Bad Name", "modle": "chat", "model": "local:nope", "tools": ["read_fil"],
        "instructions": "Hi {0} and {user.name}", "memory": {"recal": True},
        "guardrails": [{"name": "blocklst"}], "first_tool_choice": "write_file",
    })  # fmt: skip
    assert found["name"] == (
        "'Bad Name' does not match the pattern ^[a-z][a-z0-9_-]{0,63}$"
        " (a lowercase letter, then up to 63 of a-z 0-9 _ -)"
    )
    assert found["modle"] == "unknown field 'modle'; did you mean 'model'?"
    assert found["memory.recal"] == "unknown field 'recal'; did you mean 'recall'?"
    assert found["model"].startswith("the local engine does not serve 'nope'")
    assert "local:smollm2-135m-instruct" in found["model"]
    assert found["tools[0]"].startswith("no tool matches 'read_fil'; did you mean 'read_file'?")
    assert "template field {0}" in found["instructions"]
    assert "template field {user.name}" in found["instructions"]
    assert "did you mean 'blocklist'?" in found["guardrails[0].name"]
    assert "nor a tool this spec's tools allow" in found["first_tool_choice"]


def test_models_must_be_served_groups_or_known_providers() -> None:
    assert "did you mean 'chat'?" in problems({"name": "a", "model": "chta"})["model"]
    assert "did you mean 'openai'?" in problems({"name": "a", "model": "opnai:gpt"})["model"]
    assert problems({"name": "a", "model": "anthropic:claude-x"}) == {}  # the provider judges
    candidates = problems({"name": "a", "model": "chat", "route": {"candidates": ["chat", "x"]}})
    assert "no model group named 'x'" in candidates["route.candidates[1]"]


def test_parse_spec_raises_one_error_listing_all_problems() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_spec({"name": "x", "toolz": [], "max_iterations": 0})
    error = caught.value
    assert error.message.startswith("invalid agent spec (2 problems): ")
    assert [e["loc"] for e in error.extra["errors"]] == ["max_iterations", "toolz"]


async def test_the_api_answers_400_problem_json_listing_every_error(
    make_app: AppFactory, auth: dict[str, str], roost_home: Path
) -> None:
    spec = {"name": "Bad", "model": "local:nope", "tools": ["nothing_like_this"], "x": 1}
    async with make_app() as (_, client):
        response = await client.post("/v1/agents", json={"spec": spec}, headers=auth)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert [e["loc"] for e in body["errors"]] == ["name", "x", "model", "tools[0]"]
        assert "^[a-z][a-z0-9_-]{0,63}$" in body["errors"][0]["message"]
        listed = await client.get("/v1/agents", headers=auth)
        assert listed.json()["data"] == []  # nothing was registered
