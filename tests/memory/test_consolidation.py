"""Consolidation: budget-triggered, bounded summarizer calls, and crash safety at every step."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.llm.embeddings import HashingEmbedder
from roost.memory.consolidation import (
    ConsolidationPolicy,
    Consolidator,
    ExtractiveSummarizer,
    Summary,
    score_importance,
)
from roost.memory.long_term import LongTermMemory
from roost.memory.schema import MEMORY_MIGRATIONS
from roost.memory.short_term import ShortTermMemory, Turn
from roost.memory.short_term_stores import SqlShortTermStore
from roost.memory.sqlite_store import SqliteVectorStore
from roost.memory.vector_store import VectorItem
from roost.storage import Database, migrate


class Crash(Exception):
    """Stands in for the process dying at a chosen point."""


class CountingSummarizer:
    def __init__(self) -> None:
        self.inner = ExtractiveSummarizer()
        self.calls = 0
        self.fail_next = False

    async def summarize(self, turns: Sequence[Turn], *, max_tokens: int) -> Summary:
        self.calls += 1
        if self.fail_next:
            self.fail_next = False
            raise Crash("summarizer died")
        return await self.inner.summarize(turns, max_tokens=max_tokens)


class CrashingStore(SqliteVectorStore):
    fail_upsert = False

    async def upsert(self, tenant_id: str, items: Sequence[VectorItem]) -> None:
        if self.fail_upsert:
            self.fail_upsert = False
            raise Crash("died before the memories were written")
        await super().upsert(tenant_id, items)


class CrashingShortTermStore(SqlShortTermStore):
    fail_remove = False

    async def remove(self, tenant_id: str, thread_id: str, turn_ids: Sequence[str]) -> int:
        if self.fail_remove:
            self.fail_remove = False
            raise Crash("died after storing, before evicting")
        return await super().remove(tenant_id, thread_id, turn_ids)


@dataclass
class Rig:
    database: Database
    stm: ShortTermMemory
    stm_store: CrashingShortTermStore
    ltm: LongTermMemory
    store: CrashingStore
    summarizer: CountingSummarizer
    consolidator: Consolidator


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    database = await Database.connect(f"sqlite:///{tmp_path / 'roost.db'}")
    await migrate(database, MEMORY_MIGRATIONS)
    embedder = HashingEmbedder(128)
    store = CrashingStore(tmp_path / "memory.db", embedder_id=embedder.id, dimension=128)
    stm_store = CrashingShortTermStore(database)
    stm = ShortTermMemory(
        stm_store, max_tokens=200, count_tokens=lambda s: len(s.split()), overhead_tokens=0
    )
    ltm = LongTermMemory(store, embedder)
    summarizer = CountingSummarizer()
    consolidator = Consolidator(database, stm, ltm, summarizer=summarizer,
                                policy=ConsolidationPolicy(max_summary_calls=2))  # fmt: skip
    yield Rig(database, stm, stm_store, ltm, store, summarizer, consolidator)
    await store.close()
    await database.close()


FACTS = [
    "My sister's name is Ingrid and she lives in Bergen.",
    "I am allergic to peanuts, remember that.",
    "My favourite colour is teal.",
]


async def fill(rig: Rig, n: int = 30) -> None:
    await rig.stm.add("t1", "th", "system", "You are a helpful assistant.")
    for i in range(n):
        content = (
            FACTS[i] if i < len(FACTS) else f"ok so step {i} of the plan is done and we continue"
        )
        await rig.stm.add("t1", "th", "user" if i % 2 == 0 else "assistant", content)


async def state_counts(rig: Rig) -> dict[str, int]:
    rows = await rig.database.fetch_all(
        "SELECT state, count(*) AS n FROM memory_consolidations GROUP BY state"
    )
    return {r["state"]: int(r["n"]) for r in rows}


async def recall_texts(rig: Rig, query: str) -> list[str]:
    return [r.memory.text for r in await rig.ltm.recall("t1", "agent", query, k=5)]


async def test_nothing_happens_under_budget(rig: Rig) -> None:
    await fill(rig, 5)
    assert await rig.consolidator.consolidate("t1", "th", "agent") == []
    assert rig.summarizer.calls == 0


async def test_overflow_moves_oldest_turns_into_long_term(rig: Rig) -> None:
    await fill(rig)
    before = await rig.stm.turns("t1", "th")
    (report,) = await rig.consolidator.consolidate("t1", "th", "agent")
    after = await rig.stm.turns("t1", "th")
    assert after[0].role == "system"  # pinned survives
    assert sum(t.tokens for t in after) <= 200 * 0.6
    assert report.num_turns == len(before) - len(after)
    assert report.summary_calls <= 2 and rig.summarizer.calls == report.summary_calls
    assert report.num_memories == await rig.ltm.count("t1", "agent")
    assert "My sister's name is Ingrid and she lives in Bergen." in await recall_texts(
        rig, "sister name"
    )
    assert any("peanuts" in t for t in await recall_texts(rig, "allergies peanuts"))
    memories = await rig.ltm.list_memories("t1", "agent")
    assert {m.kind for m in memories} == {"summary", "episode"}
    assert all(m.source["thread_id"] == "th" and m.source["message_ids"] for m in memories)
    assert await state_counts(rig) == {"done": 1}
    assert await rig.consolidator.consolidate("t1", "th", "agent") == []  # now under budget


async def test_crash_in_summarizer_loses_nothing(rig: Rig) -> None:
    await fill(rig)
    count_before = len(await rig.stm.turns("t1", "th"))
    rig.summarizer.fail_next = True
    with pytest.raises(Crash):
        await rig.consolidator.consolidate("t1", "th", "agent")
    assert len(await rig.stm.turns("t1", "th")) == count_before
    assert await rig.ltm.count("t1", "agent") == 0
    (report,) = await rig.consolidator.consolidate("t1", "th", "agent")
    assert await rig.ltm.count("t1", "agent") == report.num_memories > 0


async def test_crash_before_storing_reuses_the_summary(rig: Rig) -> None:
    await fill(rig)
    rig.store.fail_upsert = True
    with pytest.raises(Crash):
        await rig.consolidator.consolidate("t1", "th", "agent")
    calls = rig.summarizer.calls
    assert await state_counts(rig) == {"summarized": 1}
    assert await rig.ltm.count("t1", "agent") == 0
    # A new process starts and recovers the journal.
    (report,) = await rig.consolidator.recover()
    assert rig.summarizer.calls == calls  # the summary was paid for once
    assert await rig.ltm.count("t1", "agent") == report.num_memories
    assert await state_counts(rig) == {"done": 1}


async def test_crash_before_evicting_neither_duplicates_nor_loses(rig: Rig) -> None:
    await fill(rig)
    rig.stm_store.fail_remove = True
    with pytest.raises(Crash):
        await rig.consolidator.consolidate("t1", "th", "agent")
    stored = await rig.ltm.count("t1", "agent")
    assert stored > 0 and await state_counts(rig) == {"stored": 1}
    assert len(await rig.stm.turns("t1", "th")) == 31  # nothing evicted yet
    reports = await rig.consolidator.consolidate("t1", "th", "agent")
    assert len(reports) == 1  # the interrupted batch finished; the window now fits
    assert await rig.ltm.count("t1", "agent") == stored
    texts = [m.text for m in await rig.ltm.list_memories("t1", "agent")]
    assert len(texts) == len(set(texts))
    assert sum(t.tokens for t in await rig.stm.turns("t1", "th")) <= 120


async def test_forced_and_periodic_consolidation(rig: Rig) -> None:
    await rig.stm.add("t1", "th2", "user", FACTS[0], metadata={"agent_id": "helper"})
    await rig.stm.add("t1", "th2", "assistant", "Noted.")
    await rig.stm.add("t1", "th2", "user", "Thanks!")
    (report,) = await rig.consolidator.consolidate("t1", "th2", "helper", force=True)
    assert report.num_turns == 1 and len(await rig.stm.turns("t1", "th2")) == 2
    await fill(rig)
    reports = await rig.consolidator.sweep("t1")
    assert [r.thread_id for r in reports] == ["th"]  # th2 is under budget
    assert await rig.ltm.count("t1", "default") == reports[0].num_memories


def test_importance_prefers_personal_specifics() -> None:
    def score(text: str, role: str = "user") -> float:
        return score_importance(Turn("x", role, text, 0))

    assert score("My birthday is on 4 March") > score("that sounds fine") > score("ok")
    assert score("thanks!") < 0.1


async def test_extractive_summary_respects_its_budget() -> None:
    turns = [
        Turn(str(i), "user", f"My code is {i}. Filler words here and there.", 0) for i in range(20)
    ]
    summary = await ExtractiveSummarizer().summarize(turns, max_tokens=20)
    assert 0 < summary.output_tokens <= 20
    assert "My code is" in summary.text
    assert summary.input_tokens > summary.output_tokens
