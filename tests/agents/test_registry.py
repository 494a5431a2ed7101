"""Agent specs from files and the versioned, tagged, per-tenant registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.agents.registry import AgentRegistry
from roost.agents.schema import AGENT_MIGRATIONS
from roost.agents.spec import AgentSpec, load_spec_file, parse_spec
from roost.errors import InvalidRequest, NotFound
from roost.platform import Platform
from roost.storage import migrate

EXAMPLE = Path(__file__).parents[2] / "examples" / "agents" / "kb-answerer.yaml"


def test_example_spec_loads_and_renders() -> None:
    spec = load_spec_file(EXAMPLE)
    assert spec.name == "kb-answerer" and spec.tools == ["search_knowledge"]
    assert spec.render_instructions().startswith("You answer from the knowledge base.")


def test_templates_render_variables_with_their_defaults() -> None:
    spec = parse_spec({"name": "x", "instructions": "You are {persona}. Answer in {style}.",
                       "variables": {"persona": "a careful assistant", "style": "prose"}})  # fmt: skip
    assert spec.render_instructions() == "You are a careful assistant. Answer in prose."
    assert "in bullet points" in spec.render_instructions({"style": "bullet points"})


def test_toml_spec_and_validation_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('name = "coder"\ninstructions = "Hi {who}"\nmax_iterations = 3\n')
    spec = load_spec_file(path)
    assert spec.max_iterations == 3
    with pytest.raises(InvalidRequest, match="who"):
        spec.render_instructions()
    with pytest.raises(InvalidRequest, match="max_iterations"):
        parse_spec({"name": "x", "max_iterations": 0})
    with pytest.raises(InvalidRequest, match="name"):
        parse_spec({"name": "Bad Name"})
    with pytest.raises(InvalidRequest, match="output_schema"):
        parse_spec({"name": "x", "output_schema": {"type": "nonsense"}})
    with pytest.raises(InvalidRequest, match="unknown field 'unknown_field'"):
        parse_spec({"name": "x", "unknown_field": 1})


async def test_versions_are_immutable_tags_move_and_tenants_are_apart(
    platform: Platform, tenant_id: str
) -> None:
    await migrate(platform.database, AGENT_MIGRATIONS)
    registry = AgentRegistry(platform.database)
    v1, created = await registry.create(tenant_id, AgentSpec(name="bot"), tags=("prod",))
    assert (v1.version, created, v1.tags) == (1, True, ("prod",))
    same, created = await registry.create(tenant_id, AgentSpec(name="bot"))
    assert (same.version, created) == (1, False)
    v2, created = await registry.create(
        tenant_id, AgentSpec(name="bot", instructions="Be brief."), tags=("staging",)
    )
    assert (v2.version, created) == (2, True)
    assert (await registry.get(tenant_id, "bot")).version == 2
    assert (await registry.get(tenant_id, "bot", "prod")).spec.instructions != "Be brief."
    assert (await registry.get(tenant_id, "bot", "1")).version == 1
    await registry.tag(tenant_id, "bot", "prod", 2)
    assert (await registry.get(tenant_id, "bot", "prod")).version == 2
    assert [v.version for v in await registry.versions(tenant_id, "bot")] == [2, 1]
    assert [a.name for a in await registry.list(tenant_id)] == ["bot"]

    other_id = (await platform.tenants.create("other")).id
    with pytest.raises(NotFound):
        await registry.get(other_id, "bot")
    with pytest.raises(NotFound):
        await registry.get(tenant_id, "bot", "canary")
