"""The version compare of the agent and prompt pages: a unified diff of two versions' text."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from roost.errors import InvalidRequest


def version_diff(
    what: str, texts: Mapping[int, str], a: int | None, b: int | None
) -> list[str] | None:
    """Diff lines from version ``a`` to ``b`` of ``texts`` (version -> text); None unless
    both are asked. An unknown version is a 400 naming the versions there are."""
    if a is None or b is None:
        return None
    if a not in texts or b not in texts:
        raise InvalidRequest(f"{what} has versions {sorted(texts)}")
    return list(
        difflib.unified_diff(
            texts[a].splitlines(), texts[b].splitlines(), f"version {a}", f"version {b}",
            lineterm="",
        )
    )  # fmt: skip
