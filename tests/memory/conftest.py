"""Memory fixtures: a pgvector server, the hashing embedder, and stores on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from roost.llm.embeddings import HashingEmbedder
from roost.memory.pg_store import PgVectorStore
from roost.memory.sqlite_store import SqliteVectorStore
from roost.memory.vector_store import VectorStore
from roost.storage import Database
from tests.support.markers import require_marker
from tests.support.pgvector import PgvectorServer


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[PgvectorServer]:
    server = PgvectorServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pgvector_url(pgvector_server: PgvectorServer, request: pytest.FixtureRequest) -> str:
    """A fresh database on a PostgreSQL server that has pgvector."""
    require_marker(request, "postgres")
    return pgvector_server.create_database()


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(64)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def vector_store(
    request: pytest.FixtureRequest, tmp_path: Path, embedder: HashingEmbedder
) -> AsyncIterator[VectorStore]:
    """The same store contract on each backend."""
    if request.param == "sqlite":
        store: VectorStore = SqliteVectorStore(
            tmp_path / "memory.db", embedder_id=embedder.id, dimension=embedder.dimension
        )
        yield store
        await store.close()
        return
    database = await Database.connect(request.getfixturevalue("pgvector_url"))
    try:
        yield await PgVectorStore.open(
            database, embedder_id=embedder.id, dimension=embedder.dimension
        )
    finally:
        await database.close()
