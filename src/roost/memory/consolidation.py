"""Consolidation: moving the oldest turns of a thread from short-term into long-term memory.

When a thread's window exceeds its budget, the oldest unpinned turns are scored for
importance, summarized (a bounded number of summarizer calls per batch), stored in
long-term memory as a summary plus the important turns verbatim (episodes), and only then
evicted from short-term memory.

Crash safety comes from a journal row per batch that moves through
``selected → summarized → stored → done``. Batch and memory ids are derived from the turn
ids, so re-running a half-finished batch overwrites the same memories instead of adding
copies, reuses the summary it already paid for, and evicts turns only after their
memories are stored: a crash anywhere neither loses nor duplicates a memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from roost.memory.long_term import LongTermMemory, NewMemory
from roost.memory.short_term import ShortTermMemory, Turn, approximate_tokens
from roost.observe.logging import get_logger
from roost.storage import Database, now_ms

log = get_logger("roost.memory.consolidation")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# Phrases that mark something a user will expect an assistant to remember.
_SALIENT = re.compile(
    r"\b(my|i am|i'm|i live|i work|i prefer|i like|i love|i hate|i need|remember|always|never|"
    r"favou?rite|name is|birthday|allergic|deadline|password|address|phone|email|decided|agreed|"
    r"must|important)\b",
    re.IGNORECASE,
)
_FILLER = re.compile(r"^\W*(ok|okay|thanks|thank you|sure|yes|no|great|cool|hi|hello)\W*$", re.I)


@dataclass(frozen=True, slots=True)
class Summary:
    """What one summarizer call produced and what it cost."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0


@runtime_checkable
class Summarizer(Protocol):
    """Condenses turns into a short text. An LLM-backed one comes from ``roost.llm``."""

    async def summarize(self, turns: Sequence[Turn], *, max_tokens: int) -> Summary: ...


def score_importance(turn: Turn) -> float:
    """A cheap importance score in [0, 1]: salient phrases, specifics, length, role."""
    text = turn.content.strip()
    if not text or _FILLER.match(text):
        return 0.05
    score = {"user": 0.3, "assistant": 0.2, "system": 0.2}.get(turn.role, 0.1)
    if _SALIENT.search(text):
        score += 0.3
    if re.search(r"\d", text):
        score += 0.1
    if re.search(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+", text):
        score += 0.1  # names and places mid-sentence
    score += min(0.2, len(text) / 1000)
    return round(min(1.0, score), 3)


class ExtractiveSummarizer:
    """A deterministic summarizer with no model: keeps the most important sentences.

    The default when no LLM is configured, and the scripted stand-in in tests.
    """

    def __init__(self) -> None:
        self.calls = 0

    async def summarize(self, turns: Sequence[Turn], *, max_tokens: int) -> Summary:
        self.calls += 1
        sentences: list[tuple[float, int, str]] = []
        for turn in turns:
            for sentence in _SENTENCE.split(turn.content.strip()):
                if sentence:
                    probe = Turn(turn.id, turn.role, sentence, 0)
                    sentences.append((score_importance(probe), len(sentences), sentence))
        chosen: list[tuple[int, str]] = []
        budget = max_tokens
        for score, order, sentence in sorted(sentences, key=lambda s: (-s[0], s[1])):
            cost = approximate_tokens(sentence)
            if cost <= budget and score > 0.05:
                chosen.append((order, sentence))
                budget -= cost
        text = " ".join(s for _, s in sorted(chosen))
        return Summary(
            text,
            input_tokens=sum(approximate_tokens(t.content) for t in turns),
            output_tokens=approximate_tokens(text),
        )


@dataclass(frozen=True, slots=True)
class ConsolidationPolicy:
    target_fraction: float = 0.6  # after a batch the thread holds at most this share of budget
    max_summary_calls: int = 1  # per batch; 0 stores episodes only
    summary_max_tokens: int = 256
    episode_min_importance: float = 0.4
    keep_recent_turns: int = 2  # a forced consolidation leaves the newest turns alone


@dataclass(frozen=True, slots=True)
class ConsolidationReport:
    batch_id: str
    thread_id: str
    num_turns: int
    num_memories: int
    summary_calls: int
    input_tokens: int
    output_tokens: int


class Consolidator:
    """Runs consolidation batches for threads, journaled in ``memory_consolidations``."""

    def __init__(
        self,
        database: Database,
        short_term: ShortTermMemory,
        long_term: LongTermMemory,
        *,
        summarizer: Summarizer | None = None,
        policy: ConsolidationPolicy | None = None,
    ) -> None:
        self.database = database
        self.short_term = short_term
        self.long_term = long_term
        self.summarizer = summarizer or ExtractiveSummarizer()
        self.policy = policy or ConsolidationPolicy()

    async def consolidate(
        self, tenant_id: str, thread_id: str, agent_id: str, *, force: bool = False
    ) -> list[ConsolidationReport]:
        """Finish any interrupted batch of the thread, then consolidate its overflow.

        Without ``force`` nothing happens until the thread exceeds its token budget; with it,
        every unpinned turn but the newest ``keep_recent_turns`` is consolidated.
        """
        reports = [
            await self._finish(row)
            for row in await self._pending("AND thread_id = :th", {"t": tenant_id, "th": thread_id})
        ]
        turns = await self.short_term.turns(tenant_id, thread_id)
        if force:
            unpinned = [t for t in turns if not t.pinned]
            keep = self.policy.keep_recent_turns
            chosen = unpinned[: max(0, len(unpinned) - keep)]
        elif sum(t.tokens for t in turns) > self.short_term.max_tokens:
            target = int(self.short_term.max_tokens * self.policy.target_fraction)
            chosen = self.short_term.overflow(turns, target_tokens=target)
        else:
            chosen = []
        if not chosen:
            return reports
        ids = [t.id for t in chosen]
        batch_id = hashlib.sha256(f"{tenant_id}|{thread_id}|{'|'.join(ids)}".encode()).hexdigest()[
            :24
        ]
        now = now_ms()
        await self.database.execute(
            "INSERT INTO memory_consolidations (tenant_id, batch_id, thread_id, agent_id, turn_ids,"
            " state, result, created_at, updated_at) VALUES (:t, :b, :th, :a, :ids, 'selected',"
            " NULL, :now, :now) ON CONFLICT DO NOTHING",
            {
                "t": tenant_id,
                "b": batch_id,
                "th": thread_id,
                "a": agent_id,
                "ids": json.dumps(ids),
                "now": now,
            },
        )
        row = await self.database.fetch_one(
            "SELECT * FROM memory_consolidations WHERE tenant_id = :t AND batch_id = :b",
            {"t": tenant_id, "b": batch_id},
        )
        assert row is not None
        reports.append(await self._finish(row))
        return reports

    async def recover(self, tenant_id: str | None = None) -> list[ConsolidationReport]:
        """Finish every batch a crash left unfinished (run at start-up)."""
        if tenant_id is None:
            rows = await self.database.fetch_all(
                "SELECT * FROM memory_consolidations WHERE state != 'done' ORDER BY created_at"
            )
        else:
            rows = await self._pending("", {"t": tenant_id})
        return [await self._finish(row) for row in rows]

    async def sweep(
        self, tenant_id: str, *, default_agent: str = "default"
    ) -> list[ConsolidationReport]:
        """The periodic job: consolidate every live thread of a tenant that is over budget.

        The agent of a thread is the ``agent_id`` in its turns' metadata, else ``default_agent``.
        """
        reports: list[ConsolidationReport] = []
        for thread_id in await self.short_term.store.threads(tenant_id):
            turns = await self.short_term.turns(tenant_id, thread_id)
            agent = next(
                (str(t.metadata["agent_id"]) for t in turns if "agent_id" in t.metadata),
                default_agent,
            )
            reports += await self.consolidate(tenant_id, thread_id, agent)
        return reports

    async def _pending(self, extra: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.database.fetch_all(
            "SELECT * FROM memory_consolidations WHERE tenant_id = :t AND state != 'done'"
            f" {extra} ORDER BY created_at",
            params,
        )

    async def _set_state(
        self, row: dict[str, Any], state: str, result: dict[str, Any] | None
    ) -> None:
        await self.database.execute(
            "UPDATE memory_consolidations SET state = :s, result = :r, updated_at = :now"
            " WHERE tenant_id = :t AND batch_id = :b",
            {
                "s": state,
                "r": None if result is None else json.dumps(result),
                "now": now_ms(),
                "t": row["tenant_id"],
                "b": row["batch_id"],
            },
        )

    async def _finish(self, row: dict[str, Any]) -> ConsolidationReport:
        tenant_id, thread_id, agent_id = row["tenant_id"], row["thread_id"], row["agent_id"]
        turn_ids: list[str] = json.loads(row["turn_ids"])
        state = row["state"]
        result: dict[str, Any] = json.loads(row["result"]) if row["result"] else {}
        if state == "selected":
            wanted = set(turn_ids)
            turns = [t for t in await self.short_term.turns(tenant_id, thread_id) if t.id in wanted]
            result = await self._distil(row["batch_id"], thread_id, turns)
            await self._set_state(row, "summarized", result)
            state = "summarized"
        if state == "summarized":
            entries = [NewMemory(**m) for m in result["memories"]]
            await self.long_term.remember_many(tenant_id, agent_id, entries)
            await self._set_state(row, "stored", result)
            state = "stored"
        if state == "stored":
            await self.short_term.evict(tenant_id, thread_id, turn_ids)
            await self._set_state(row, "done", result)
        log.info(
            "memory.consolidated",
            thread_id=thread_id,
            batch_id=row["batch_id"],
            memories=len(result["memories"]),
        )
        return ConsolidationReport(
            batch_id=row["batch_id"],
            thread_id=thread_id,
            num_turns=len(turn_ids),
            num_memories=len(result["memories"]),
            summary_calls=int(result["summary_calls"]),
            input_tokens=int(result["input_tokens"]),
            output_tokens=int(result["output_tokens"]),
        )

    async def _distil(self, batch_id: str, thread_id: str, turns: Sequence[Turn]) -> dict[str, Any]:
        """Summaries and episodes for a batch, as JSON-ready memory fields plus their cost."""
        memories: list[dict[str, Any]] = []
        calls = input_tokens = output_tokens = 0
        num_groups = min(self.policy.max_summary_calls, len(turns))
        if num_groups:
            size = math.ceil(len(turns) / num_groups)
            for start in range(0, len(turns), size):
                group = turns[start : start + size]
                summary = await self.summarizer.summarize(
                    group, max_tokens=self.policy.summary_max_tokens
                )
                calls += 1
                input_tokens += summary.input_tokens
                output_tokens += summary.output_tokens
                if summary.text.strip():
                    memories.append(
                        {
                            "text": summary.text,
                            "kind": "summary",
                            "importance": max(score_importance(t) for t in group),
                            "source": _source(thread_id, group),
                            "valid_from": group[-1].created_at or None,
                        }
                    )
        for turn in turns:
            importance = score_importance(turn)
            if importance >= self.policy.episode_min_importance:
                memories.append(
                    {
                        "text": turn.content,
                        "kind": "episode",
                        "importance": importance,
                        "source": _source(thread_id, [turn]),
                        "metadata": {"role": turn.role},
                        "valid_from": turn.created_at or None,
                    }
                )
        for n, memory in enumerate(memories):
            memory["id"] = f"mem_{batch_id}_{n:03d}"
        return {
            "memories": memories,
            "summary_calls": calls,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        }


def _source(thread_id: str, turns: Sequence[Turn]) -> dict[str, Any]:
    return {"thread_id": thread_id, "message_ids": [t.id for t in turns]}
