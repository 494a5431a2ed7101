"""The embedding cache: unchanged text is never embedded twice, across collections,
re-ingestion and processes; vectors come back exact; LRU and TTL bound it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from roost.config import Settings, load_settings
from roost.llm.embeddings import HashingEmbedder, Vectors
from roost.memory.embedding_cache import CachedEmbedder
from roost.memory.service import MemoryServices
from roost.storage import Database


class CountingEmbedder(HashingEmbedder):
    """The real hashing embedder, recording every text it is asked to embed."""

    def __init__(self) -> None:
        super().__init__(64)
        self.embedded: list[str] = []

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded.extend(texts)
        return await super().embed(texts)


PARAGRAPHS = [
    f"Paragraph {i} says something about topic {i} in many words. " * 12 for i in range(6)
]


async def open_memory(
    settings: Settings, embedder: CountingEmbedder
) -> tuple[Database, MemoryServices]:
    database = await Database.connect(settings.database_url)
    return database, await MemoryServices.open(settings, database, embedder=embedder)


async def test_reingesting_unchanged_text_embeds_nothing_and_a_change_only_itself(
    settings: Settings,
) -> None:
    counting = CountingEmbedder()
    database, memory = await open_memory(settings, counting)
    try:
        kb = memory.knowledge
        await kb.create_collection("t", "docs")
        await kb.create_collection("t", "copy")
        document = "\n\n".join(PARAGRAPHS)
        await kb.add_text("t", "docs", "doc://a", document)
        first = len(counting.embedded)
        assert first >= 3  # several chunks

        await kb.add_text("t", "copy", "doc://a", document)  # same text, other collection
        assert len(counting.embedded) == first

        changed = document.replace("topic 5", "a brand new subject")
        await kb.add_text("t", "docs", "doc://a", changed)
        new = counting.embedded[first:]
        assert 1 <= len(new) < first and all("brand new subject" in t for t in new)
        hits = await kb.search("t", "docs", "brand new subject", k=1)
        assert "brand new subject" in hits[0].text
    finally:
        await memory.close()
        await database.close()

    # Another process (a new MemoryServices) finds the vectors in the database.
    again = CountingEmbedder()
    database, memory = await open_memory(settings, again)
    try:
        await memory.knowledge.create_collection("t", "third")
        await memory.knowledge.add_text("t", "third", "doc://a", "\n\n".join(PARAGRAPHS))
        assert again.embedded == []
    finally:
        await memory.close()
        await database.close()


async def vectors_round_trip(database: Database) -> None:
    from roost.platform.schema import migrate_all

    await migrate_all(database)
    inner = HashingEmbedder(32)
    cache = CachedEmbedder(inner, database, max_entries=3)
    texts = ["alpha", "beta", "alpha", "gamma"]
    first = await cache.embed(texts)
    assert np.array_equal(first, inner.embed_sync(texts))
    assert (cache.stats.hits, cache.stats.misses) == (1, 3)  # "alpha" twice in one call
    second = await cache.embed(["gamma", "beta"])
    assert np.array_equal(second, inner.embed_sync(["gamma", "beta"]))
    assert cache.stats.hits == 3
    await cache.embed(["delta", "epsilon"])
    await cache.evict()
    entries, nbytes = await cache.count()
    assert entries <= 3 and nbytes == entries * 32 * 4
    assert await cache.clear() == entries
    assert await cache.count() == (0, 0)


async def test_vectors_round_trip_and_the_size_bound_on_sqlite(settings: Settings) -> None:
    database = await Database.connect(settings.database_url)
    try:
        await vectors_round_trip(database)
    finally:
        await database.close()


@pytest.mark.postgres
async def test_vectors_round_trip_and_the_size_bound_on_postgres(postgres_url: str) -> None:
    database = await Database.connect(postgres_url)
    try:
        await vectors_round_trip(database)
    finally:
        await database.close()


async def test_disabled_by_settings(roost_home: object) -> None:
    settings = load_settings(
        env={"ROOST_HOME": str(roost_home), "ROOST_CACHE__EMBEDDINGS__ENABLED": "false"}
    )
    counting = CountingEmbedder()
    database, memory = await open_memory(settings, counting)
    try:
        assert memory.embedder is counting
    finally:
        await memory.close()
        await database.close()
