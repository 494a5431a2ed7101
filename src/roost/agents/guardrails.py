"""Input/output validators on agents. A failing check blocks the run or repairs the text,
as the agent's spec says; the security layer registers more (PII, prompt injection).

A guardrail is ``async def check(text, options) -> GuardrailResult``; register it under a
name and list that name in a spec's ``guardrails``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from roost.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    """``ok`` or not; ``repaired`` is the fixed text a ``repair`` policy continues with."""

    ok: bool
    reason: str = ""
    repaired: str | None = None


Guardrail = Callable[[str, Mapping[str, Any]], Awaitable[GuardrailResult]]


class GuardrailBlocked(InvalidRequest):
    """A guardrail with ``on_fail = "block"`` refused the text."""

    code = "guardrail_blocked"


async def max_length(text: str, options: Mapping[str, Any]) -> GuardrailResult:
    """Refuse text longer than ``options["max_chars"]`` (repair: truncate)."""
    limit = int(options.get("max_chars", 4000))
    if len(text) <= limit:
        return GuardrailResult(True)
    return GuardrailResult(False, f"longer than {limit} characters", text[:limit])


async def blocklist(text: str, options: Mapping[str, Any]) -> GuardrailResult:
    """Refuse text containing any of ``options["words"]`` (repair: mask them)."""
    words = [str(w) for w in options.get("words", [])]
    if not words:
        return GuardrailResult(True)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    found = sorted({m.group(0).lower() for m in pattern.finditer(text)})
    if not found:
        return GuardrailResult(True)
    return GuardrailResult(False, f"contains {found}", pattern.sub("[redacted]", text))


async def regex_deny(text: str, options: Mapping[str, Any]) -> GuardrailResult:
    """Refuse text matching any of ``options["patterns"]`` (repair: replace the matches)."""
    patterns = [str(p) for p in options.get("patterns", [])]
    if not patterns:
        return GuardrailResult(True)
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as exc:  # a bad pattern must not let text through unchecked
        return GuardrailResult(False, f"invalid deny pattern: {exc}")
    hits = [p.pattern for p in compiled if p.search(text)]
    if not hits:
        return GuardrailResult(True)
    repaired = text
    for pattern in compiled:
        repaired = pattern.sub("[redacted]", repaired)
    return GuardrailResult(False, f"matches denied patterns {hits}", repaired)


async def json_schema(text: str, options: Mapping[str, Any]) -> GuardrailResult:
    """Refuse text that is not JSON matching ``options["schema"]`` (no repair)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return GuardrailResult(False, f"not JSON: {exc}")
    try:
        validator = jsonschema.Draft202012Validator(options.get("schema") or {})
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except jsonschema.SchemaError as exc:
        return GuardrailResult(False, f"invalid schema: {exc.message}")
    if error is None:
        return GuardrailResult(True)
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return GuardrailResult(False, f"{where}: {error.message}")


class GuardrailRegistry:
    """Named guardrails; ``max_length``, ``blocklist``, ``regex_deny`` and ``json_schema``
    are built in; the kernel adds ``pii`` and ``prompt_injection``."""

    def __init__(self) -> None:
        self._checks: dict[str, Guardrail] = {
            "max_length": max_length,
            "blocklist": blocklist,
            "regex_deny": regex_deny,
            "json_schema": json_schema,
        }

    def register(self, name: str, check: Guardrail) -> None:
        self._checks[name] = check

    def get(self, name: str) -> Guardrail:
        try:
            return self._checks[name]
        except KeyError:
            known = ", ".join(sorted(self._checks))
            raise InvalidRequest(f"no guardrail {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._checks)
