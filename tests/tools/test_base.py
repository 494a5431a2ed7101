"""Tools from functions, argument validation, composable toolsets, per-tenant registry."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import Field

from roost.errors import InvalidRequest, NotFound
from roost.tools.base import RiskLevel, Tool, tool
from roost.tools.context import ToolContext
from roost.tools.registry import ToolRegistry
from roost.tools.toolsets import (
    CombinedToolset,
    FilteredToolset,
    PrefixedToolset,
    RenamedToolset,
    StaticToolset,
)


@tool(risk=RiskLevel.WRITE, timeout_s=5, idempotent=True)
async def add(
    ctx: ToolContext, a: int, b: Annotated[int, Field(ge=0, description="non-negative")] = 1
) -> int:
    """Add two numbers."""
    return a + b


async def _echo(ctx: ToolContext, arguments: dict[str, Any]) -> Any:
    return arguments


def test_schema_and_metadata_come_from_the_function() -> None:
    assert add.name == "add"
    assert add.description == "Add two numbers."
    assert add.risk is RiskLevel.WRITE and add.timeout_s == 5 and add.idempotent
    schema = add.input_schema
    assert schema["required"] == ["a"]
    assert schema["properties"]["b"]["minimum"] == 0
    assert schema["additionalProperties"] is False
    assert add.describe()["risk"] == "write"


def test_arguments_are_validated_with_field_names_in_errors() -> None:
    assert add.validate_arguments({"a": 2}) == {"a": 2, "b": 1}
    with pytest.raises(InvalidRequest, match="b"):
        add.validate_arguments({"a": 2, "b": -1})
    with pytest.raises(InvalidRequest, match="rm: Extra inputs"):
        add.validate_arguments({"a": 2, "rm": "-rf"})


def test_json_schema_tools_validate_with_jsonschema() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    remote = Tool("search", "s", schema, _echo)
    assert remote.validate_arguments({"q": "x"}) == {"q": "x"}
    with pytest.raises(InvalidRequest, match="'q' is a required property"):
        remote.validate_arguments({})


def test_names_and_risk_order() -> None:
    with pytest.raises(ValueError, match="must match"):
        Tool("bad name!", "", {}, _echo)
    assert RiskLevel.DESTRUCTIVE.at_least(RiskLevel.EXECUTE)
    assert not RiskLevel.READ.at_least(RiskLevel.WRITE)


async def test_toolsets_compose() -> None:
    base = StaticToolset([add, Tool("echo", "e", {"type": "object"}, _echo)])
    prefixed = PrefixedToolset(base, "math")
    assert [t.name for t in await prefixed.list_tools()] == ["math_add", "math_echo"]
    only_writes = FilteredToolset(prefixed, lambda t: t.risk is RiskLevel.WRITE)
    assert [t.name for t in await only_writes.list_tools()] == ["math_add"]
    renamed = RenamedToolset(only_writes, {"math_add": "plus"})
    assert [t.name for t in await renamed.list_tools()] == ["plus"]
    with pytest.raises(ValueError, match="offered by two toolsets"):
        await CombinedToolset([base, base]).list_tools()


async def test_registry_is_per_tenant() -> None:
    registry = ToolRegistry([StaticToolset([add])])
    registry.add_for_tenant("t1", StaticToolset([Tool("secret", "", {"type": "object"}, _echo)]))
    assert [t.name for t in await registry.list_tools("t1")] == ["add", "secret"]
    assert [t.name for t in await registry.list_tools("t2")] == ["add"]
    with pytest.raises(NotFound):
        await registry.get("t2", "secret")
