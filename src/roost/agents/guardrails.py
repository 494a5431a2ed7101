"""Input/output validators on agents. A failing check blocks the run or repairs the text,
as the agent's spec says; the security layer registers more (PII, prompt injection).

A guardrail is ``async def check(text, options) -> GuardrailResult``; register it under a
name and list that name in a spec's ``guardrails``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

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


class GuardrailRegistry:
    """Named guardrails; ``max_length`` and ``blocklist`` are built in."""

    def __init__(self) -> None:
        self._checks: dict[str, Guardrail] = {"max_length": max_length, "blocklist": blocklist}

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
