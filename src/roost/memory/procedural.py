"""Procedural memory: how tasks were done before, to plan and prompt similar ones.

Each record is a task description with the tool-call trajectory that was tried and how it
ended. Successes come back as plans and few-shot examples for similar tasks; failures are
kept too, so an agent can be told which approach did not work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roost.errors import InvalidRequest
from roost.llm.embeddings import Embedder
from roost.memory.vector_store import StoredItem, VectorItem, VectorStore
from roost.storage import new_id


def namespace_of(agent_id: str) -> str:
    return f"proc:{agent_id}"


@dataclass(frozen=True, slots=True)
class Step:
    """One tool call of a trajectory and what came of it."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    result: str = ""
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "arguments": dict(self.arguments),
            "result": self.result,
            "ok": self.ok,
        }


@dataclass(frozen=True, slots=True)
class Procedure:
    id: str
    task: str
    steps: list[Step]
    success: bool
    notes: str
    source: dict[str, Any]
    created_at: int
    score: float = 0.0

    @classmethod
    def from_item(cls, item: StoredItem, score: float = 0.0) -> Procedure:
        meta = item.metadata
        return cls(
            id=item.id,
            task=str(meta.get("task", item.text)),
            steps=[Step(**s) for s in meta.get("steps", [])],
            success=meta.get("outcome") == "success",
            notes=str(meta.get("notes", "")),
            source=dict(meta.get("source") or {}),
            created_at=item.created_at,
            score=score,
        )

    def as_example(self) -> str:
        """The procedure as a few-shot example a prompt can include."""
        lines = [f"Task: {self.task}", f"Outcome: {'success' if self.success else 'failure'}"]
        for n, step in enumerate(self.steps, start=1):
            args = json.dumps(dict(step.arguments), sort_keys=True)
            status = "" if step.ok else " (failed)"
            lines.append(
                f"{n}. {step.tool}({args}){status}" + (f" -> {step.result}" if step.result else "")
            )
        if self.notes:
            lines.append(f"Notes: {self.notes}")
        return "\n".join(lines)


class ProceduralMemory:
    """Record trajectories and find the ones that fit a new task."""

    def __init__(self, store: VectorStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    async def record(
        self,
        tenant_id: str,
        agent_id: str,
        task: str,
        steps: Sequence[Step],
        *,
        success: bool,
        notes: str = "",
        source: Mapping[str, Any] | None = None,
        procedure_id: str | None = None,
    ) -> Procedure:
        """Store one trajectory; ``procedure_id`` (e.g. the run id) makes it idempotent."""
        if not task.strip():
            raise InvalidRequest("a procedure needs a task description", param="task")
        text = task if not notes else f"{task}\n{notes}"
        (vector,) = await self.embedder.embed([text])
        item = VectorItem(
            id=procedure_id or new_id("proc"),
            namespace=namespace_of(agent_id),
            text=text,
            vector=vector,
            metadata={
                "task": task,
                "outcome": "success" if success else "failure",
                "steps": [s.to_json() for s in steps],
                "tools": sorted({s.tool for s in steps}),
                "notes": notes,
                "source": dict(source or {}),
            },
        )
        await self.store.upsert(tenant_id, [item])
        (stored,) = await self.store.get(tenant_id, [item.id])
        return Procedure.from_item(stored)

    async def similar(
        self,
        tenant_id: str,
        agent_id: str,
        task: str,
        *,
        k: int = 3,
        success: bool | None = True,
        min_similarity: float | None = None,
    ) -> list[Procedure]:
        """Procedures for tasks like ``task``: successes by default, failures with ``False``.

        With ``min_similarity``, a hit must share discriminating words with ``task`` or be
        at least that close by cosine: search always returns its ``k`` best, related or not.
        """
        where = {} if success is None else {"outcome": "success" if success else "failure"}
        (vector,) = await self.embedder.embed([task])
        hits = await self.store.search(
            tenant_id, namespace_of(agent_id), text=task, vector=vector, k=k, where=where
        )
        if min_similarity is not None:
            hits = [
                hit
                for hit in hits
                if hit.keyword_rank is not None or (hit.similarity or 0.0) >= min_similarity
            ]
        return [Procedure.from_item(hit.item, hit.score) for hit in hits]

    async def examples(
        self,
        tenant_id: str,
        agent_id: str,
        task: str,
        *,
        k: int = 2,
        min_similarity: float | None = None,
    ) -> str:
        """Few-shot text: similar successes, then similar failures to avoid."""
        wins = await self.similar(
            tenant_id, agent_id, task, k=k, success=True, min_similarity=min_similarity
        )
        losses = await self.similar(
            tenant_id, agent_id, task, k=1, success=False, min_similarity=min_similarity
        )
        parts = [p.as_example() for p in wins]
        parts += [f"Avoid (this failed before):\n{p.as_example()}" for p in losses]
        return "\n\n".join(parts)
