"""Consolidation through a roost.llm model (a scripted FunctionModel, offline and exact)."""

from __future__ import annotations

from pathlib import Path

from roost.llm.embeddings import HashingEmbedder
from roost.llm.testing import CallInfo, FunctionModel
from roost.memory.consolidation import ConsolidationPolicy, Consolidator, Summarizer
from roost.memory.long_term import LongTermMemory
from roost.memory.schema import MEMORY_MIGRATIONS
from roost.memory.short_term import InProcessShortTermStore, ShortTermMemory
from roost.memory.sqlite_store import SqliteVectorStore
from roost.memory.summarizers import ModelSummarizer
from roost.storage import Database, migrate


async def test_model_summaries_are_stored_with_their_cost(tmp_path: Path) -> None:
    seen: list[CallInfo] = []

    def summarize(info: CallInfo) -> str:
        seen.append(info)
        return "The user's sister Ingrid lives in Bergen."

    model = FunctionModel(summarize)
    summarizer = ModelSummarizer(model)
    assert isinstance(summarizer, Summarizer)
    database = await Database.connect(f"sqlite:///{tmp_path / 'r.db'}")
    await migrate(database, MEMORY_MIGRATIONS)
    embedder = HashingEmbedder(64)
    store = SqliteVectorStore(tmp_path / "m.db", embedder_id=embedder.id, dimension=64)
    stm = ShortTermMemory(
        InProcessShortTermStore(),
        max_tokens=40,
        count_tokens=lambda s: len(s.split()),
        overhead_tokens=0,
    )
    ltm = LongTermMemory(store, embedder)
    consolidator = Consolidator(database, stm, ltm, summarizer=summarizer,
                                policy=ConsolidationPolicy(max_summary_calls=1, summary_max_tokens=64))  # fmt: skip
    await stm.add(
        "t1", "th", "user", "My sister Ingrid moved to Bergen last spring, she loves it there."
    )
    for i in range(6):
        await stm.add("t1", "th", "assistant", f"noted, anything else for item {i} today?")
    (report,) = await consolidator.consolidate("t1", "th", "agent")
    assert len(seen) == 1 and report.summary_calls == 1
    prompt = seen[0].messages
    assert prompt[0].role == "system" and "user: My sister Ingrid" in prompt[1].text
    assert seen[0].settings.max_tokens == 64 and seen[0].settings.temperature == 0.0
    assert report.input_tokens > 0 and report.output_tokens > 0
    summaries = await ltm.list_memories("t1", "agent", kind="summary")
    assert [m.text for m in summaries] == ["The user's sister Ingrid lives in Bergen."]
    await store.close()
    await database.close()
