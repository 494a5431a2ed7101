"""What a tool is: a name, a description, a JSON-schema input, a risk level and a handler.

Tools are plain data plus an async handler. The executor (``roost.tools.executor``) owns
everything around a call: argument validation, permissions, approvals, timeouts, audit.
Tools built from Python functions get their input schema from the type hints through a
pydantic model; tools from MCP servers carry the server's JSON schema and are validated
with ``jsonschema``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, get_type_hints

import jsonschema
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from roost.errors import InvalidRequest, RoostError

if TYPE_CHECKING:
    from roost.tools.context import ToolContext

# The names model providers accept for function tools (OpenAI and Anthropic agree on this).
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RiskLevel(StrEnum):
    """How much harm a call can do, in increasing order; approvals gate on this order."""

    READ = "read"
    WRITE = "write"
    NETWORK = "network"
    EXECUTE = "execute"
    DESTRUCTIVE = "destructive"

    @property
    def rank(self) -> int:
        return _RISK_ORDER.index(self)

    def at_least(self, other: RiskLevel) -> bool:
        """Whether this level is ``other`` or riskier."""
        return self.rank >= other.rank


_RISK_ORDER = list(RiskLevel)


class ToolFailure(RoostError):
    """A tool ran and refused or failed; the agent sees ``type`` and ``message`` as its result."""

    code = "tool_failed"
    status = 422
    title = "Tool failed"

    def __init__(self, message: str, *, type: str = "tool_error", **extra: Any) -> None:
        super().__init__(message, **extra)
        self.type = type


Handler = Callable[["ToolContext", dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    """One callable capability. ``handler(ctx, arguments)`` gets arguments already validated."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    risk: RiskLevel = RiskLevel.READ
    output_schema: dict[str, Any] | None = None
    timeout_s: float = 30.0
    idempotent: bool = False
    arguments_model: type[BaseModel] | None = field(default=None, compare=False)
    # Tags let policies and toolsets select groups ("files", "git", "mcp:github").
    tags: frozenset[str] = frozenset()
    # Called when an approval for a call is asked, with the same arguments: starts what
    # the call will need (a prepared jail) so the decision only releases it. Never runs
    # the call; a failure only means the call starts cold.
    prepare: Handler | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not TOOL_NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {TOOL_NAME.pattern}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")

    def renamed(self, name: str) -> Tool:
        return replace(self, name=name)

    def validate_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Arguments checked against the input schema; :class:`InvalidRequest` names the field."""
        if self.arguments_model is not None:
            try:
                model = self.arguments_model.model_validate(dict(arguments))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "arguments"
                raise InvalidRequest(
                    f"invalid arguments for {self.name}: {where}: {first['msg']}", param=where
                ) from exc
            return {name: getattr(model, name) for name in type(model).model_fields}
        try:
            jsonschema.validate(dict(arguments), self.input_schema)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "arguments"
            raise InvalidRequest(
                f"invalid arguments for {self.name}: {where}: {exc.message}", param=where
            ) from exc
        return dict(arguments)

    def describe(self) -> dict[str, Any]:
        """The public description: what ``GET /v1/tools`` and MCP ``tools/list`` show."""
        described: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "risk": self.risk.value,
            "input_schema": self.input_schema,
            "timeout_s": self.timeout_s,
            "idempotent": self.idempotent,
        }
        if self.output_schema is not None:
            described["output_schema"] = self.output_schema
        return described


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


def tool_from_function(
    function: Callable[..., Awaitable[Any]],
    *,
    name: str | None = None,
    description: str | None = None,
    risk: RiskLevel = RiskLevel.READ,
    timeout_s: float = 30.0,
    idempotent: bool = False,
    output_schema: dict[str, Any] | None = None,
    tags: frozenset[str] = frozenset(),
) -> Tool:
    """A :class:`Tool` from ``async def f(ctx, a: int, b: str = "x") -> ...``.

    The first parameter receives the :class:`ToolContext`; the others become the input
    schema (types from hints, defaults make a field optional, extra keys are refused).
    The description defaults to the docstring.
    """
    hints = get_type_hints(function, include_extras=True)
    parameters = list(inspect.signature(function).parameters.values())
    if not parameters:
        raise TypeError(f"{function.__name__} must take the tool context as its first parameter")
    fields: dict[str, Any] = {}
    for parameter in parameters[1:]:
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    model = create_model(f"{function.__name__}_arguments", __base__=_Arguments, **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)

    async def handler(ctx: ToolContext, arguments: dict[str, Any]) -> Any:
        return await function(ctx, **arguments)

    return Tool(
        name=name or function.__name__,
        description=description or inspect.cleandoc(function.__doc__ or "").strip(),
        input_schema=schema,
        handler=handler,
        risk=risk,
        output_schema=output_schema,
        timeout_s=timeout_s,
        idempotent=idempotent,
        arguments_model=model,
        tags=tags,
    )


def tool(
    *,
    name: str | None = None,
    risk: RiskLevel = RiskLevel.READ,
    timeout_s: float = 30.0,
    idempotent: bool = False,
    tags: frozenset[str] = frozenset(),
) -> Callable[[Callable[..., Awaitable[Any]]], Tool]:
    """Decorator form of :func:`tool_from_function`."""

    def wrap(function: Callable[..., Awaitable[Any]]) -> Tool:
        return tool_from_function(
            function, name=name, risk=risk, timeout_s=timeout_s, idempotent=idempotent, tags=tags
        )

    return wrap
