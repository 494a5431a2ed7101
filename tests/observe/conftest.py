"""The trace store on each backend: embedded SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.observe.trace_schema import TRACE_MIGRATIONS
from roost.observe.trace_store import TraceStore
from roost.storage import Database, migrate


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'traces.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[TraceStore]:
    database = await Database.connect(database_url)
    try:
        await migrate(database, TRACE_MIGRATIONS)
        yield TraceStore(database)
    finally:
        await database.close()


# The server's app fixtures, for the trace API tests; the agents' runtime fixtures.
from tests.agents.conftest import (  # noqa: E402, F401
    make_runtime,
    platform,
    tenant_id,
    tool_log,
    tools,
)
from tests.server.conftest import auth, make_app  # noqa: E402, F401
