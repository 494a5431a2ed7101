"""Every problem of an agent spec, found at once: its shape (misspelled fields with a
suggestion, bad values with the real pattern) and what it names in this deployment
(models, tools, guardrails, template fields).

Pure functions over plain data: the catalog (:mod:`roost.agents.catalog`) gathers what
the deployment serves and calls them, so they are tested without a server.
"""

from __future__ import annotations

import difflib
import fnmatch
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from roost.agents.spec import NAME_PATTERN, AgentSpec
from roost.errors import InvalidRequest

TOOL_CHOICES = ("auto", "required", "none")


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One problem: where (``tools[1]``, ``memory.recal``) and what is wrong."""

    loc: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "message": self.message}

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


@dataclass(frozen=True, slots=True)
class Offer:
    """What a spec may name here: model groups, models by id, providers, local models
    and the tenant's tools. ``mcp_servers``' tools count as present even when their
    server is not connected (``<server>_<tool>``), since they are listed only once it is."""

    groups: Collection[str] = ()
    model_ids: Collection[str] = ()
    providers: Collection[str] = ()
    local_models: Collection[str] = ()
    tools: Collection[str] = ()
    mcp_servers: Collection[str] = ()
    guardrails: Collection[str] = field(
        default_factory=lambda: ("blocklist", "json_schema", "max_length", "regex_deny")
    )


def shape_problems(data: Mapping[str, Any]) -> list[SpecProblem]:
    """What the schema refuses, every field at once."""
    try:
        AgentSpec.model_validate(data)
    except ValidationError as exc:
        return [_problem(err) for err in exc.errors()]
    return []


def offer_problems(data: Mapping[str, Any], offer: Offer) -> list[SpecProblem]:
    """What the spec names that this deployment does not offer. Works on the raw data,
    so that it reports alongside shape problems; wrongly typed values are left to those."""
    problems: list[SpecProblem] = []
    model = data.get("model", AgentSpec.model_fields["model"].default)
    if isinstance(model, str):
        problems += _model_problems("model", model, offer)
    route = data.get("route")
    candidates = route.get("candidates") if isinstance(route, Mapping) else None
    for i, candidate in _strings(candidates):
        problems += _model_problems(f"route.candidates[{i}]", candidate, offer)
    patterns = [pattern for _, pattern in _strings(data.get("tools"))]
    for i, pattern in _strings(data.get("tools")):
        problems += _tool_problems(f"tools[{i}]", pattern, offer)
    choice = data.get("first_tool_choice")
    if (isinstance(choice, str) and choice not in TOOL_CHOICES
            and not any(fnmatch.fnmatchcase(choice, p) for p in patterns)):  # fmt: skip
        problems.append(SpecProblem("first_tool_choice", f"{choice!r} is neither one of"
            f" {list(TOOL_CHOICES)} nor a tool this spec's tools allow"))  # fmt: skip
    instructions = data.get("instructions")
    if isinstance(instructions, str):
        problems += _template_problems(instructions)
    guardrails = data.get("guardrails")
    for i, ref in enumerate(guardrails if isinstance(guardrails, list) else []):
        name = ref.get("name") if isinstance(ref, Mapping) else None
        if isinstance(name, str) and name not in offer.guardrails:
            problems.append(SpecProblem(f"guardrails[{i}].name",
                f"no guardrail {name!r}{_suggest(name, offer.guardrails)}"
                f" (known: {', '.join(sorted(offer.guardrails))})"))  # fmt: skip
    return problems


def _strings(value: Any) -> list[tuple[int, str]]:
    """The string items of a list, with their index (anything else is a shape problem)."""
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]


def _problem(err: Mapping[str, Any]) -> SpecProblem:
    loc = _loc(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        name = str(err["loc"][-1])
        fields = _fields_at(err["loc"][:-1])
        return SpecProblem(loc, f"unknown field {name!r}{_suggest(name, fields)}")
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        hint = (
            " (a lowercase letter, then up to 63 of a-z 0-9 _ -)" if pattern == NAME_PATTERN else ""
        )
        return SpecProblem(loc, f"{err['input']!r} does not match the pattern {pattern}{hint}")
    if kind == "missing":
        return SpecProblem(loc, "is required")
    return SpecProblem(loc, str(err["msg"]).removeprefix("Value error, "))


def _loc(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "spec"


def _fields_at(parts: tuple[Any, ...]) -> list[str]:
    """The field names of the (nested) model at ``parts`` of a spec."""
    model: type[BaseModel] = AgentSpec
    for part in parts:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        nested = _model_of(info.annotation) if info else None
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        nested = _model_of(candidate) if getattr(candidate, "__args__", None) else None
        if nested is not None:
            return nested
    return None


def _suggest(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_problems(loc: str, model: str, offer: Offer) -> list[SpecProblem]:
    if model in offer.groups or model in offer.model_ids:
        return []
    provider, sep, name = model.partition(":")
    if not sep:
        known = ", ".join(sorted(offer.groups)) or "none configured"
        return [SpecProblem(loc, f"no model group named {model!r}{_suggest(model, offer.groups)}"
                f" (groups: {known}; or write provider:model)")]  # fmt: skip
    if provider == "local":
        if name in offer.local_models:
            return []
        served = ", ".join(f"local:{m}" for m in sorted(offer.local_models)) or "none"
        return [SpecProblem(loc, f"the local engine does not serve {name!r}"
                f"{_suggest(name, offer.local_models)} (served: {served})")]  # fmt: skip
    if provider not in offer.providers:
        known = ", ".join(sorted({*offer.providers, "local"}))
        return [SpecProblem(loc, f"unknown provider {provider!r} in {model!r}"
                f"{_suggest(provider, offer.providers)} (providers: {known})")]  # fmt: skip
    return []  # a configured provider: its model names are the provider's to judge


def _tool_problems(loc: str, pattern: str, offer: Offer) -> list[SpecProblem]:
    if any(fnmatch.fnmatchcase(tool, pattern) for tool in offer.tools):
        return []
    if any(pattern.startswith(f"{server}_") for server in offer.mcp_servers):
        return []
    return [SpecProblem(loc, f"no tool matches {pattern!r}{_suggest(pattern, offer.tools)}"
            " (see roost tools list)")]  # fmt: skip


def _template_problems(instructions: str) -> list[SpecProblem]:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(instructions)]
    except ValueError:
        return []  # the schema's validator reports a template that does not parse
    problems = []
    for name in dict.fromkeys(fields):  # each bad field once, in order
        if name is None:
            continue
        if not name.isidentifier():
            what = "{}" if name == "" else "{" + name + "}"
            problems.append(SpecProblem("instructions", f"template field {what} must be a"
                " variable name such as {persona} (write {{ and }} for literal braces)"))  # fmt: skip
    return problems


def invalid_spec(problems: list[SpecProblem]) -> InvalidRequest:
    """One error listing every problem: in its message (one line) and as ``errors``
    (problem+json over HTTP, one line each in the CLI)."""
    headline = f"invalid agent spec ({len(problems)} problem{'s' if len(problems) > 1 else ''})"
    return InvalidRequest(
        f"{headline}: {'; '.join(str(p) for p in problems)}",
        param=problems[0].loc,
        errors=[p.to_dict() for p in problems],
    )
