"""The server's app fixtures for the prompt API tests; the stores on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import auth, make_app  # noqa: F401


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))
