"""Backends every conformance suite runs against: embedded SQLite and a real PostgreSQL
(and the in-memory implementation, where a protocol has one).

One suite per protocol, each test once per backend; a new backend joins by adding a
parameter. Suites whose stores need more than a database (approvals, vector stores,
short-term memory, the response cache) build them in a fixture of their own,
parametrized the same way, with ``marks=pytest.mark.postgres`` / ``redis``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from roost.graph import MemoryCheckpointer, SqliteCheckpointer
from roost.graph.checkpoint.base import Checkpointer
from roost.storage import Database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conformance.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = await Database.connect(database_url)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Checkpointer]:
    """A fresh, empty checkpointer of each backend (also used by tests/graph)."""
    saver: Checkpointer
    if request.param == "memory":
        saver = MemoryCheckpointer()
    elif request.param == "sqlite":
        saver = SqliteCheckpointer(tmp_path / "graph.db")
    else:
        from roost.graph import PostgresCheckpointer

        saver = PostgresCheckpointer(request.getfixturevalue("postgres_url"))
    yield saver
    saver.close()
