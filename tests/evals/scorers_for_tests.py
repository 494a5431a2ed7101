"""A Python scorer as an operator installs one (listed in ``[evals] python_scorers``)."""

from __future__ import annotations

from typing import Any


def mentions_expected(output: Any, expected: Any, item_input: Any) -> dict[str, Any]:
    found = str(expected) in str(output)
    return {"score": 1.0 if found else 0.0, "reason": f"looked for {expected!r}"}
