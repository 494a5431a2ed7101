"""Conformance suite: every VectorStore backend (SQLite + sqlite-vec, PostgreSQL + pgvector)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from roost.errors import InvalidRequest
from roost.llm.embeddings import HashingEmbedder
from roost.memory.pg_store import PgVectorStore
from roost.memory.sqlite_store import SqliteVectorStore
from roost.memory.vector_store import (
    VectorItem,
    VectorStore,
    fts_phrases,
    fuse,
    informative_keywords,
)
from roost.storage import Database


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(64)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def vector_store(
    request: pytest.FixtureRequest, tmp_path: Path, embedder: HashingEmbedder
) -> AsyncIterator[VectorStore]:
    """The same store contract on each backend (PostgreSQL with pgvector)."""
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


DOCS = {
    "d1": ("Alpine lakes freeze solid in deep winter", {"topic": "nature", "year": 2020}),
    "d2": ("The espresso machine needs descaling every month", {"topic": "coffee", "year": 2021}),
    "d3": ("Quarterly revenue grew because of the new espresso bar", {"topic": "finance"}),
    "d4": ("Kubernetes pods restart when the liveness probe fails", {"topic": "ops", "year": 2023}),
    "d5": (
        "Grinding beans just before brewing keeps coffee fresh",
        {"topic": "coffee", "year": 2022, "pinned": True},
    ),
}


async def put(
    store: VectorStore,
    embedder: HashingEmbedder,
    docs: dict[str, tuple[str, dict[str, Any]]],
    tenant: str = "t1",
    namespace: str = "ns",
) -> None:
    texts = [text for text, _ in docs.values()]
    vectors = await embedder.embed(texts)
    await store.upsert(
        tenant,
        [
            VectorItem(item_id, namespace, text, vector, meta)
            for (item_id, (text, meta)), vector in zip(docs.items(), vectors, strict=True)
        ],
    )


async def search_ids(
    store: VectorStore, embedder: HashingEmbedder, query: str, **kw: Any
) -> list[str]:
    vector = (await embedder.embed([query]))[0]
    hits = await store.search(
        kw.pop("tenant", "t1"), kw.pop("namespace", "ns"), text=query, vector=vector, **kw
    )
    return [hit.item.id for hit in hits]


async def test_upsert_then_get_round_trips_text_and_metadata(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS)
    items = await vector_store.get("t1", ["d5", "missing", "d1"])
    assert [i.id for i in items] == ["d5", "d1"]
    assert items[0].metadata == {"topic": "coffee", "year": 2022, "pinned": True}
    assert items[0].embedder == embedder.id and items[0].tenant_id == "t1"
    assert await vector_store.count("t1", "ns") == 5


async def test_upsert_replaces_text_and_keyword_index(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS)
    await put(
        vector_store, embedder, {"d1": ("Glaciers carve valleys slowly", {"topic": "nature"})}
    )
    assert await search_ids(vector_store, embedder, "lakes freeze", mode="keyword") == []
    assert await search_ids(vector_store, embedder, "glaciers", mode="keyword") == ["d1"]
    assert (await vector_store.get("t1", ["d1"]))[0].metadata == {"topic": "nature"}
    assert await vector_store.count("t1", "ns") == 5


async def test_vector_search_ranks_the_same_text_first(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS)
    vector = (await embedder.embed([DOCS["d4"][0]]))[0]
    hits = await vector_store.search("t1", "ns", vector=vector, k=3, mode="vector")
    assert hits[0].item.id == "d4"
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert len(hits) == 3 and all(h.keyword_rank is None for h in hits)


async def test_keyword_search_uses_stems_and_ignores_other_words(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS)
    assert await search_ids(vector_store, embedder, "restarting pods", mode="keyword") == ["d4"]
    assert await search_ids(vector_store, embedder, "zebra", mode="keyword") == []


async def test_hybrid_fuses_both_lists(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS)
    vector = (await embedder.embed(["espresso"]))[0]
    hits = await vector_store.search("t1", "ns", text="espresso descaling", vector=vector, k=5)
    assert hits[0].item.id == "d2"  # best in both lists
    assert hits[0].vector_rank is not None and hits[0].keyword_rank == 1
    assert "d3" in [h.item.id for h in hits]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_tenants_never_see_each_other(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS, tenant="t1")
    await put(
        vector_store, embedder, {"d1": ("Tenant two owns this espresso note", {})}, tenant="t2"
    )
    assert await search_ids(vector_store, embedder, "espresso", tenant="t2") == ["d1"]
    assert "Tenant two" not in (await vector_store.get("t1", ["d1"]))[0].text
    assert await vector_store.delete("t2", ["d1", "d2"]) == 1
    assert await vector_store.count("t1", "ns") == 5
    assert await search_ids(vector_store, embedder, "espresso", tenant="t3") == []


async def test_namespaces_are_separate(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS, namespace="a")
    await put(vector_store, embedder, {"x": ("espresso in the other namespace", {})}, namespace="b")
    assert await search_ids(vector_store, embedder, "espresso", namespace="b") == ["x"]
    assert "x" not in await search_ids(vector_store, embedder, "espresso", namespace="a")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"topic": "coffee"}, {"d2", "d5"}),
        ({"year": None}, {"d3"}),
        ({"topic": {"$in": ["ops", "nature"]}}, {"d1", "d4"}),
        ({"topic": {"$ne": "coffee"}}, {"d1", "d3", "d4"}),
        ({"year": {"$gte": 2021, "$lt": 2023}}, {"d2", "d5"}),
        ({"pinned": True}, {"d5"}),
        ({"topic": "coffee", "year": {"$gt": 2021}}, {"d5"}),
    ],
)
async def test_filters_apply_to_every_mode(
    vector_store: VectorStore, embedder: HashingEmbedder, where: dict[str, Any], expected: set[str]
) -> None:
    await put(vector_store, embedder, DOCS)
    query = "coffee espresso lakes pods revenue beans"
    for mode in ("vector", "hybrid"):
        assert (
            set(await search_ids(vector_store, embedder, query, k=10, mode=mode, where=where))
            == expected
        )
    keyword = set(
        await search_ids(vector_store, embedder, query, k=10, mode="keyword", where=where)
    )
    assert keyword == expected
    assert {i.id for i in await vector_store.list_items("t1", "ns", where)} == expected
    assert await vector_store.count("t1", "ns", where) == len(expected)


async def test_bad_filters_are_rejected(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    for where in ({"bad key": 1}, {"x": {"$regex": "a"}}, {"x": {"$gt": "a"}}, {"x": [1]}):
        with pytest.raises(InvalidRequest):
            await vector_store.list_items("t1", "ns", where)


async def test_update_metadata_merges(vector_store: VectorStore, embedder: HashingEmbedder) -> None:
    await put(vector_store, embedder, DOCS)
    assert await vector_store.update_metadata("t1", "d1", {"superseded_by": "d9", "year": 2024})
    assert not await vector_store.update_metadata("t2", "d1", {"x": 1})
    (item,) = await vector_store.get("t1", ["d1"])
    assert item.metadata == {"topic": "nature", "year": 2024, "superseded_by": "d9"}
    assert "d1" not in {
        i.id for i in await vector_store.list_items("t1", "ns", {"superseded_by": None})
    }


async def test_delete_where_removes_from_every_index(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS)
    assert await vector_store.delete_where("t1", "ns", {"topic": "coffee"}) == 2
    remaining = await search_ids(
        vector_store, embedder, "coffee espresso beans descaling grinding", k=10
    )
    assert "d2" not in remaining and "d5" not in remaining
    assert await vector_store.count("t1", "ns") == 3


async def test_wrong_dimension_is_rejected(vector_store: VectorStore) -> None:

    with pytest.raises(InvalidRequest):
        await vector_store.upsert("t1", [VectorItem("x", "ns", "x", np.ones(3, dtype=np.float32))])


async def test_another_embedder_never_mixes_vectors(
    vector_store: VectorStore, embedder: HashingEmbedder
) -> None:
    await put(vector_store, embedder, DOCS)
    other = HashingEmbedder(32)
    if isinstance(vector_store, SqliteVectorStore):
        second: VectorStore = SqliteVectorStore(
            vector_store.path, embedder_id=other.id, dimension=32
        )
    else:
        assert isinstance(vector_store, PgVectorStore)
        second = await PgVectorStore.open(vector_store.database, embedder_id=other.id, dimension=32)
    assert {i.id for i in await second.stale("t1", "ns")} == set(DOCS)
    query = (await other.embed(["espresso"]))[0]
    assert await second.search("t1", "ns", vector=query, mode="vector") == []
    # Re-embedding moves an item into the new space and out of the old one.
    (d2,) = await second.get("t1", ["d2"])
    await second.upsert(
        "t1", [VectorItem("d2", "ns", d2.text, (await other.embed([d2.text]))[0], d2.metadata)]
    )
    assert [h.item.id for h in await second.search("t1", "ns", vector=query, mode="vector")] == [
        "d2"
    ]
    assert "d2" not in {i.id for i in await second.stale("t1", "ns")}
    old = (await embedder.embed([d2.text]))[0]
    assert "d2" not in [
        h.item.id for h in await vector_store.search("t1", "ns", vector=old, mode="vector")
    ]
    if isinstance(second, SqliteVectorStore):
        await second.close()


def test_rrf_prefers_items_found_by_both_lists() -> None:
    fused = fuse([("a", 0.9), ("b", 0.8), ("c", 0.7)], [("c", 5.0), ("d", 4.0)], k=4)
    # b and d tie on score; the keyword list breaks the tie.
    assert [f[0] for f in fused] == ["c", "a", "d", "b"]
    assert fused[0][2:4] == (3, 1)


def test_only_discriminating_keyword_hits_are_fused() -> None:
    peaked = [("rare", 15.0), ("near", 11.0), *((f"weak{i}", 4.0) for i in range(30))]
    assert informative_keywords(peaked) == ["rare", "near"]
    flat = [(f"common{i}", 3.0 - i * 0.01) for i in range(30)]
    assert informative_keywords(flat) == []
    fused = fuse([("v1", 0.5), ("v2", 0.4)], flat, k=3)
    assert [f[0] for f in fused] == ["v1", "v2"]  # the flat list could only add noise
    # Keyword-only search keeps the whole list: there is nothing to outvote.
    assert len(fuse([], flat, k=50)) == 30


def test_query_tokens_become_phrases() -> None:
    assert fts_phrases("Error ZX-4471 in the v2.3 build") == [
        ["error"],
        ["zx", "4471"],
        ["v2", "3"],
        ["build"],
    ]


async def test_codes_match_as_phrases(vector_store: VectorStore, embedder: HashingEmbedder) -> None:
    await put(
        vector_store,
        embedder,
        {"x1": ("ticket ZX-4471 is open", {}), "x2": ("ZX team owns 4471 other things", {})},
    )
    assert await search_ids(vector_store, embedder, "ZX-4471", mode="keyword") == ["x1"]


@pytest.mark.parametrize("cache_vectors", [0, 3, 100_000])
async def test_sqlite_vector_copy_stays_exact_and_fresh(
    tmp_path: Path, embedder: HashingEmbedder, cache_vectors: int
) -> None:
    """The in-memory copy answers like vec0, follows own writes, and drops on foreign ones."""
    path = tmp_path / "m.db"
    mine = SqliteVectorStore(
        path, embedder_id=embedder.id, dimension=embedder.dimension, cache_vectors=cache_vectors
    )
    other = SqliteVectorStore(
        path, embedder_id=embedder.id, dimension=embedder.dimension, cache_vectors=0
    )
    reference = SqliteVectorStore(
        path, embedder_id=embedder.id, dimension=embedder.dimension, cache_vectors=0
    )
    await put(mine, embedder, DOCS)
    query = (await embedder.embed(["espresso coffee beans"]))[0]

    async def ids(store: VectorStore) -> list[str]:
        hits = await store.search("t1", "ns", vector=query, k=5, mode="vector")
        # Order by rounded similarity, then id: equal vectors may come back in either order.
        ranked = sorted(hits, key=lambda h: (-round(h.similarity or 0.0, 4), h.item.id))
        return [h.item.id for h in ranked]

    assert await ids(mine) == await ids(reference)
    await put(mine, embedder, {"new": ("espresso coffee beans", {})})  # own write
    assert (await ids(mine))[0] == "new"
    await other.delete("t1", ["new"])  # another connection's commit
    assert "new" not in await ids(mine)
    await mine.delete("t1", ["d2"])
    assert await ids(mine) == await ids(reference)
    await put(mine, embedder, {"d5": ("moved away", {})}, namespace="elsewhere")
    assert "d5" not in await ids(mine)
    for store in (mine, other, reference):
        await store.close()
