"""Long-term and procedural memory over the SQLite store with the hashing embedder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.errors import InvalidRequest, NotFound
from roost.llm.embeddings import HashingEmbedder
from roost.memory.long_term import LongTermMemory, NewMemory, RecallWeights
from roost.memory.procedural import ProceduralMemory, Step
from roost.memory.sqlite_store import SqliteVectorStore

DAY = 24 * 3600.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path, embedder: HashingEmbedder) -> AsyncIterator[SqliteVectorStore]:
    store = SqliteVectorStore(
        tmp_path / "m.db", embedder_id=embedder.id, dimension=embedder.dimension
    )
    yield store
    await store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ltm(store: SqliteVectorStore, embedder: HashingEmbedder, clock: FakeClock) -> LongTermMemory:
    return LongTermMemory(store, embedder, clock=clock)


async def test_remember_and_recall_with_source(ltm: LongTermMemory) -> None:
    await ltm.remember("t1", "a", "The user's dog is called Biscuit", importance=0.8,
                       source={"thread_id": "th1", "message_ids": ["m1"]})  # fmt: skip
    await ltm.remember("t1", "a", "The user prefers tea over coffee")
    await ltm.remember("t1", "b", "Agent b knows about Biscuit too")
    recalled = await ltm.recall("t1", "a", "what is the dog called", k=2)
    assert recalled[0].memory.text == "The user's dog is called Biscuit"
    assert recalled[0].memory.source == {"thread_id": "th1", "message_ids": ["m1"]}
    assert all(r.memory.agent_id == "a" for r in recalled)
    assert await ltm.recall("t2", "a", "dog") == []  # other tenant


async def test_supersede_keeps_history_and_hides_the_old_fact(
    ltm: LongTermMemory, clock: FakeClock
) -> None:
    old = await ltm.remember("t1", "a", "The user lives in Lisbon")
    before = int(clock.now * 1000)
    clock.now += DAY
    new = await ltm.supersede("t1", "a", old.id, "The user lives in Porto now")
    texts = [r.memory.text for r in await ltm.recall("t1", "a", "where does the user live", k=5)]
    assert texts == ["The user lives in Porto now"]
    # Nothing was destroyed: the old fact is still there, marked, and answers the past.
    kept = await ltm.get("t1", "a", old.id)
    assert kept.superseded_by == new.id and kept.text == "The user lives in Lisbon"
    then = [
        r.memory.text for r in await ltm.recall("t1", "a", "where does the user live", as_of=before)
    ]
    assert then == ["The user lives in Lisbon"]
    assert len(await ltm.list_memories("t1", "a", include_superseded=True)) == 2
    assert len(await ltm.list_memories("t1", "a")) == 1
    with pytest.raises(NotFound):
        await ltm.supersede("t1", "b", old.id, "wrong agent")


async def test_recency_and_importance_weights_change_the_order(
    ltm: LongTermMemory, clock: FakeClock
) -> None:
    await ltm.remember("t1", "a", "Meeting notes about the budget review", importance=0.9)
    clock.now += 90 * DAY
    await ltm.remember("t1", "a", "Meeting notes about the budget planning", importance=0.1)
    query = "meeting notes budget"
    by_recency = await ltm.recall(
        "t1", "a", query, weights=RecallWeights(relevance=0, recency=1, importance=0)
    )
    assert by_recency[0].memory.importance == 0.1
    assert by_recency[0].recency > by_recency[1].recency
    by_importance = await ltm.recall(
        "t1", "a", query, weights=RecallWeights(relevance=0, recency=0, importance=1)
    )
    assert by_importance[0].memory.importance == 0.9


async def test_same_id_is_idempotent_and_forget_deletes(ltm: LongTermMemory) -> None:
    entry = NewMemory("Planted fact", id="mem_fixed")
    await ltm.remember_many("t1", "a", [entry])
    await ltm.remember_many("t1", "a", [entry])
    assert await ltm.count("t1", "a") == 1
    assert await ltm.forget("t1", "b", ["mem_fixed"]) == 0  # not agent b's
    assert await ltm.forget("t1", "a", ["mem_fixed"]) == 1
    assert await ltm.count("t1", "a") == 0


async def test_invalid_memories_are_rejected(ltm: LongTermMemory) -> None:
    for fields in ({"text": " "}, {"text": "x", "importance": 2.0}, {"text": "x", "kind": "dream"}):
        with pytest.raises(InvalidRequest):
            await ltm.remember("t1", "a", **fields)


async def test_changed_embedder_reembeds_instead_of_mixing(
    tmp_path: Path, ltm: LongTermMemory
) -> None:
    await ltm.remember("t1", "a", "Old space memory about sailing")
    other = HashingEmbedder(32)
    store2 = SqliteVectorStore(tmp_path / "m.db", embedder_id=other.id, dimension=32)
    ltm2 = LongTermMemory(store2, other)
    # Before re-embedding only the keyword list can find it: no vector of the old space is used.
    (before,) = await ltm2.recall("t1", "a", "sailing")
    assert before.relevance == pytest.approx(0.5)
    assert await ltm2.reembed("t1", "a") == 1
    recalled = await ltm2.recall("t1", "a", "sailing")
    assert recalled[0].memory.text == "Old space memory about sailing"
    assert recalled[0].relevance == pytest.approx(1.0)  # first in both lists now
    await store2.close()


async def test_procedures_come_back_for_similar_tasks(
    store: SqliteVectorStore, embedder: HashingEmbedder
) -> None:
    proc = ProceduralMemory(store, embedder)
    steps = [Step("search_files", {"pattern": "*.py"}, "12 files"), Step("run_tests", {}, "ok")]
    await proc.record(
        "t1", "a", "fix the failing python tests", steps, success=True, procedure_id="run_1"
    )
    await proc.record("t1", "a", "fix the failing python tests", [Step("rm", {"path": "/"}, ok=False)],
                      success=False, notes="deleting files does not fix tests")  # fmt: skip
    await proc.record("t1", "a", "write a haiku about autumn", [Step("write", {})], success=True)
    found = await proc.similar("t1", "a", "python tests are failing, fix them", k=1)
    assert [p.id for p in found] == ["run_1"]
    assert found[0].steps[0] == Step("search_files", {"pattern": "*.py"}, "12 files")
    failures = await proc.similar("t1", "a", "fix python tests", success=False)
    assert len(failures) == 1 and not failures[0].success
    text = await proc.examples("t1", "a", "fix python tests", k=1)
    assert 'search_files({"pattern": "*.py"}) -> 12 files' in text
    assert "Avoid (this failed before)" in text and "rm(" in text
    await proc.record(
        "t1", "a", "fix the failing python tests", steps, success=True, procedure_id="run_1"
    )
    assert await store.count("t1", "proc:a") == 3  # same run id: no duplicate
