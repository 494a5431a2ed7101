"""Markers that follow from what a test uses, so nobody has to remember to add them.

``slow``: the bundled model or a subprocess server; ``postgres`` / ``redis``: a real
server of that kind; ``browser``: Debian's chromium driven by Playwright. ``make test-fast``
deselects all four.
"""

from __future__ import annotations

import pytest

# A test that uses one of these fixtures, directly or through another fixture, gets the
# marker. ``model_home`` is where every fixture holding the bundled model converts it.
MARKER_OF_FIXTURE = {
    "model_home": "slow",
    "start_worker": "slow",  # `roost worker` subprocesses
    "postgres_server": "postgres",
    "postgres_url": "postgres",
    "pgvector_server": "postgres",
    "pgvector_url": "postgres",
    "redis_server": "redis",
    "redis_url": "redis",
    "chromium": "browser",  # tests/ui: the Debian chromium package
}


def mark_by_fixtures(items: list[pytest.Item]) -> None:
    """Add the marker of every listed fixture a test uses (explicit marks stay as they are)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker in sorted({MARKER_OF_FIXTURE[name] for name in used & MARKER_OF_FIXTURE.keys()}):
            if item.get_closest_marker(marker) is None:
                item.add_marker(marker)


def require_marker(request: pytest.FixtureRequest, marker: str) -> None:
    """Fail a test that reaches a server through ``request.getfixturevalue`` unmarked.

    Such a use is invisible at collection, so the backend's parameter must carry the mark
    (``pytest.param("postgres", marks=pytest.mark.postgres)``); otherwise the fast set
    would start servers it promises not to need.
    """
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(
            f"{request.node.nodeid} uses a {marker} server but is not marked {marker}: "
            f"give its parameter marks=pytest.mark.{marker}",
            pytrace=False,
        )
