"""What an agent is: a validated spec, written as YAML/TOML or sent to the API.

A spec names the model (a model group or ``provider:model``), the instructions (a
template whose ``{variables}`` are filled per run), the tools it may use (name globs),
its limits, its approval and guardrail policies, and optionally a JSON Schema its final
answer must satisfy. Specs are immutable once registered; a changed spec is a new version.
"""

from __future__ import annotations

import hashlib
import json
import string
import tomllib
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from roost.errors import InvalidRequest

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
DEFAULT_MODEL = "local:smollm2-135m-instruct"


class MemoryPolicy(BaseModel):
    """How the agent uses the memory layer (recall before the first step, remember the answer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recall: bool = False
    remember: bool = False
    max_recalled: int = Field(5, ge=1, le=50)
    procedures: bool = Field(
        True, description="Record successful tool sequences; hint them for similar tasks"
    )
    max_procedures: int = Field(2, ge=1, le=10)


class ContextPolicy(BaseModel):
    """``context:`` in an agent spec: how runs keep their transcript within the context."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["drop_oldest", "summarize"] = "drop_oldest"
    max_tokens: int | None = Field(
        None, ge=64, description="Cap on the transcript's tokens (default: what the model fits)"
    )
    margin_tokens: int | None = Field(
        None, ge=0, description="Tokens kept free for the chat template (default: 1/32 of it)"
    )


class RoutePolicy(BaseModel):
    """``route:`` in a spec: the learned router picks the model among ``candidates`` per run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    candidates: list[str] = Field(min_length=2, description="Model groups or provider:model ids")
    router: str | None = Field(None, description="Router name (default: the agent's name)")
    keywords: dict[str, list[str]] = Field(
        default_factory=dict, description="Until trained: candidate -> words that pick it"
    )

    @model_validator(mode="after")
    def _keywords_name_candidates(self) -> RoutePolicy:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("route candidates must be distinct")
        unknown = sorted(set(self.keywords) - set(self.candidates))
        if unknown:
            raise ValueError(f"route keywords name unknown candidates {unknown}")
        return self


class GuardrailRef(BaseModel):
    """A named validator and what happens when it fails: ``block`` the run or ``repair`` the text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    stage: Literal["input", "output"] = "output"
    on_fail: Literal["block", "repair"] = "block"
    options: dict[str, Any] = Field(default_factory=dict)


PiiAction = Literal["off", "detect", "mask", "block"]
# The detectors of roost.security.pii (KINDS there; a test keeps the two the same).
PiiKind = Literal[
    "email", "iban", "credit_card", "us_ssn", "uk_nino", "de_tax_id", "ipv6", "ipv4", "phone"
]


class ContentPolicy(BaseModel):
    """``pii:`` in a spec: this agent's PII/injection policy per stage; unset fields keep
    the tenant's (``[guardrails]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: PiiAction | None = None
    tool_output: PiiAction | None = None
    output: PiiAction | None = None
    injection: Literal["off", "detect", "mark", "block"] | None = None
    kinds: list[PiiKind] | None = None


class AgentSpec(BaseModel):
    """One agent version's definition. ``version`` is assigned by the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    instructions: str = "You are a helpful assistant."
    prompt: str | None = Field(
        None,
        description="A managed prompt, name@label or name@version, resolved at each run's"
        " start; it replaces the instructions, and its config block sets model and sampling",
    )
    variables: dict[str, str] = Field(default_factory=dict, description="Template defaults")
    model: str = DEFAULT_MODEL
    tools: list[str] = Field(default_factory=list, description="Tool name globs")
    max_iterations: int = Field(8, ge=1, le=100)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    first_tool_choice: str | None = Field(
        None, description="First turn only: 'required' or a tool name (later turns: auto)"
    )
    tool_turns: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Model turns that may call tools; later turns must answer (small models"
        " that would call tools until max_iterations answer instead)",
    )
    reflect: bool = Field(False, description="Run a self-check before answering")
    max_reflections: int = Field(1, ge=0, le=5)
    output_schema: dict[str, Any] | None = None
    output_retries: int = Field(2, ge=0, le=5, description="Repair attempts for the schema")
    approval: Literal["tools", "never"] = Field(
        "tools", description="'tools': the tool layer's approval rules apply"
    )
    guardrails: list[GuardrailRef] = Field(default_factory=list)
    pii: ContentPolicy | None = None
    memory: MemoryPolicy = Field(default_factory=MemoryPolicy)
    context: ContextPolicy = Field(default_factory=ContextPolicy)
    route: RoutePolicy | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("output_schema")
    @classmethod
    def _schema_is_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(
                    f"output_schema is not a valid JSON Schema: {exc.message}"
                ) from exc
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_is_a_reference(cls, value: str | None) -> str | None:
        if value is not None:
            from roost.prompts.store import PromptRef

            try:
                PromptRef.parse(value)
            except InvalidRequest as exc:
                raise ValueError(exc.message) from exc
        return value

    @field_validator("instructions")
    @classmethod
    def _template_parses(cls, value: str) -> str:
        try:
            list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"instructions are not a valid template: {exc}") from exc
        return value

    def render_instructions(self, variables: dict[str, Any] | None = None) -> str:
        """The system prompt with ``{name}`` filled from the spec's defaults and ``variables``."""
        values = {**self.variables, **(variables or {})}
        missing = [
            field
            for _, field, _, _ in string.Formatter().parse(self.instructions)
            if field and field not in values
        ]
        if missing:
            raise InvalidRequest(
                f"agent {self.name!r} needs variables {sorted(set(missing))}", param="variables"
            )
        return self.instructions.format_map(values)

    def digest(self) -> str:
        """A hash of the definition: the registry makes a new version only when it changes."""
        data = self.model_dump(mode="json")
        # Fields added after specs were first stored count only when set, so re-creating an
        # older spec still finds its version instead of making a new one.
        for key, default in _LATER_FIELDS.items():
            if data.get(key) == default:
                data.pop(key)
        for key, default in _LATER_MEMORY_FIELDS.items():
            if data["memory"].get(key) == default:
                data["memory"].pop(key)
        canonical = json.dumps(data, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_LATER_FIELDS: dict[str, Any] = {
    "context": ContextPolicy().model_dump(mode="json"),
    "route": None,
    "tool_turns": None,
    "pii": None,
    "prompt": None,
}
_LATER_MEMORY_FIELDS: dict[str, Any] = {"procedures": True, "max_procedures": 2}


def parse_spec(data: Any) -> AgentSpec:
    """Validate a spec from a dict; :class:`InvalidRequest` lists every bad field."""
    # Imported here: the checks build on AgentSpec, defined above.
    from roost.agents.spec_check import invalid_spec, shape_problems

    if not isinstance(data, dict):
        raise InvalidRequest("an agent spec must be an object")
    problems = shape_problems(data)
    if problems:
        raise invalid_spec(problems)
    return AgentSpec.model_validate(data)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The raw data of a spec file (``.yaml``/``.yml``, ``.toml`` or ``.json``), unvalidated."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise InvalidRequest(f"{path}: use .yaml, .toml or .json")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"{path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest(f"{path}: an agent spec must be a mapping of fields")
    return data


def load_spec_file(path: str | Path) -> AgentSpec:
    """Read and validate a spec from ``.yaml``/``.yml``, ``.toml`` or ``.json``."""
    return parse_spec(read_spec_file(path))
