"""MemoryServices picks its backends from settings and what the database offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.config import load_settings
from roost.errors import StorageUnavailable
from roost.llm.embeddings import HashingEmbedder
from roost.memory.pg_store import PgVectorStore
from roost.memory.service import TOOL_SCHEMAS, MemoryServices
from roost.memory.short_term_stores import RedisShortTermStore, SqlShortTermStore
from roost.memory.sqlite_store import SqliteVectorStore
from roost.storage import Database
from roost.storage.redis import connect_redis


async def open_services(roost_home: Path, url: str, **env: str) -> tuple[Database, MemoryServices]:
    settings = load_settings(
        env={"ROOST_HOME": str(roost_home), "ROOST_MEMORY__EMBEDDER": "hashing", **env}
    )
    database = await Database.connect(url)
    try:
        return database, await MemoryServices.open(settings, database, embedder=HashingEmbedder(64))
    except BaseException:
        await database.close()
        raise


async def test_postgres_with_pgvector_keeps_vectors_in_the_database(
    roost_home: Path, pgvector_url: str
) -> None:
    database, memory = await open_services(roost_home, pgvector_url)
    try:
        assert isinstance(memory.store, PgVectorStore)
        assert isinstance(memory.short_term.store, SqlShortTermStore)
        await memory.remember("t1", "a", "Vectors live in PostgreSQL here")
        assert (await memory.recall("t1", "a", "where do vectors live"))[0].memory.text.startswith(
            "Vectors"
        )
    finally:
        await memory.close()
        await database.close()


async def test_postgres_without_pgvector_falls_back_to_an_embedded_file(
    roost_home: Path, postgres_url: str
) -> None:
    database, memory = await open_services(roost_home, postgres_url)
    try:
        assert isinstance(memory.store, SqliteVectorStore)
        assert Path(memory.store.path) == roost_home / "memory.db"
    finally:
        await memory.close()
        await database.close()
    with pytest.raises(StorageUnavailable, match="pgvector"):
        await open_services(roost_home, postgres_url, ROOST_MEMORY__VECTOR_BACKEND="postgres")


async def test_redis_holds_short_term_when_configured(roost_home: Path, redis_url: str) -> None:
    settings = load_settings(
        env={"ROOST_HOME": str(roost_home), "ROOST_MEMORY__EMBEDDER": "hashing"}
    )
    database = await Database.connect(f"sqlite:///{roost_home / 'roost.db'}")
    redis = await connect_redis(redis_url)
    memory = await MemoryServices.open(settings, database, redis)
    try:
        assert isinstance(memory.short_term.store, RedisShortTermStore)
        await memory.add_turn("t1", "th", "a", "user", "hello")
        assert [t.content for t in await memory.short_term.window("t1", "th")] == ["hello"]
    finally:
        await memory.close()
        await redis.aclose()
        await database.close()


def test_tool_schemas_name_their_required_arguments() -> None:
    assert TOOL_SCHEMAS["remember"]["parameters"]["required"] == ["text"]
    assert TOOL_SCHEMAS["search_knowledge"]["parameters"]["required"] == ["collection", "query"]
