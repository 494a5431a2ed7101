"""Long-term memory: facts, episodes and summaries of an agent, kept append-only.

A memory is never rewritten in place. Correcting a fact stores a new memory and marks the
old one ``superseded_by`` it (with the time), so history stays answerable ("what did we
believe on May 1st?") and no update can destroy what a user said. Deleting is explicit
(:meth:`LongTermMemory.forget`), for users who ask to be forgotten.

Recall ranks by ``relevance × w_r + recency × w_t + importance × w_i``: relevance from
hybrid search, recency halving every ``half_life_s``, importance in ``[0, 1]``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from roost.errors import InvalidRequest, NotFound
from roost.llm.embeddings import Embedder
from roost.memory.vector_store import RRF_K, StoredItem, VectorItem, VectorStore
from roost.storage import new_id

MemoryKind = Literal["fact", "episode", "summary"]
KINDS = ("fact", "episode", "summary")


def namespace_of(agent_id: str) -> str:
    """The vector-store namespace of one agent's long-term memory."""
    return f"ltm:{agent_id}"


@dataclass(frozen=True, slots=True)
class RecallWeights:
    """How recall mixes its three signals; tune per agent."""

    relevance: float = 1.0
    recency: float = 0.2
    importance: float = 0.3
    half_life_s: float = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class NewMemory:
    """A memory to store; give ``id`` to make the write idempotent."""

    text: str
    kind: MemoryKind = "fact"
    importance: float = 0.5
    source: Mapping[str, Any] = field(default_factory=dict)  # thread_id, run_id, message_ids
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    valid_from: int | None = None  # epoch ms; defaults to now


@dataclass(frozen=True, slots=True)
class Memory:
    id: str
    agent_id: str
    text: str
    kind: str
    importance: float
    valid_from: int
    superseded_by: str | None
    superseded_at: int | None
    source: dict[str, Any]
    metadata: dict[str, Any]
    created_at: int

    @classmethod
    def from_item(cls, item: StoredItem) -> Memory:
        meta = dict(item.metadata)
        return cls(
            id=item.id,
            agent_id=item.namespace.removeprefix("ltm:"),
            text=item.text,
            kind=str(meta.pop("kind", "fact")),
            importance=float(meta.pop("importance", 0.5)),
            valid_from=int(meta.pop("valid_from", item.created_at)),
            superseded_by=meta.pop("superseded_by", None),
            superseded_at=meta.pop("superseded_at", None),
            source=dict(meta.pop("source", None) or {}),
            metadata=meta,
            created_at=item.created_at,
        )


@dataclass(frozen=True, slots=True)
class Recalled:
    memory: Memory
    score: float
    relevance: float
    recency: float


class LongTermMemory:
    """Remember and recall an agent's memories over a :class:`VectorStore`."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        weights: RecallWeights | None = None,
        clock: Any = time.time,
    ) -> None:
        if store.embedder_id != embedder.id:
            raise ValueError("the store's vector space belongs to another embedder")
        self.store = store
        self.embedder = embedder
        self.weights = weights or RecallWeights()
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def remember(self, tenant_id: str, agent_id: str, text: str, **fields: Any) -> Memory:
        """Store one memory (see :class:`NewMemory` for the fields)."""
        (memory,) = await self.remember_many(tenant_id, agent_id, [NewMemory(text, **fields)])
        return memory

    async def remember_many(
        self, tenant_id: str, agent_id: str, entries: Sequence[NewMemory]
    ) -> list[Memory]:
        """Store memories in one batch: one embedding call, one write. Same ids overwrite."""
        for entry in entries:
            if not entry.text.strip():
                raise InvalidRequest("a memory needs text", param="text")
            if entry.kind not in KINDS:
                raise InvalidRequest(f"kind must be one of {list(KINDS)}", param="kind")
            if not 0.0 <= entry.importance <= 1.0:
                raise InvalidRequest("importance must be within [0, 1]", param="importance")
        if not entries:
            return []
        now = self._now_ms()
        vectors = await self.embedder.embed([e.text for e in entries])
        items = [
            VectorItem(
                id=entry.id or new_id("mem"),
                namespace=namespace_of(agent_id),
                text=entry.text,
                vector=vector,
                metadata={
                    **dict(entry.metadata),
                    "kind": entry.kind,
                    "importance": entry.importance,
                    "valid_from": entry.valid_from if entry.valid_from is not None else now,
                    "source": dict(entry.source),
                },
            )
            for entry, vector in zip(entries, vectors, strict=True)
        ]
        await self.store.upsert(tenant_id, items)
        stored = await self.store.get(tenant_id, [item.id for item in items])
        return [Memory.from_item(item) for item in stored]

    async def supersede(
        self, tenant_id: str, agent_id: str, old_id: str, text: str, **fields: Any
    ) -> Memory:
        """Store ``text`` as the memory that replaces ``old_id``; the old one stays, marked."""
        old = await self.get(tenant_id, agent_id, old_id)
        fields.setdefault("kind", old.kind)
        fields.setdefault("metadata", {})
        new = await self.remember(
            tenant_id,
            agent_id,
            text,
            **fields,
            source={"supersedes": old_id, **fields.pop("source", {})},
        )
        await self.store.update_metadata(
            tenant_id, old_id, {"superseded_by": new.id, "superseded_at": new.valid_from}
        )
        return new

    async def get(self, tenant_id: str, agent_id: str, memory_id: str) -> Memory:
        items = await self.store.get(tenant_id, [memory_id])
        if not items or items[0].namespace != namespace_of(agent_id):
            raise NotFound(f"no memory {memory_id!r} for agent {agent_id!r}")
        return Memory.from_item(items[0])

    async def list_memories(
        self,
        tenant_id: str,
        agent_id: str,
        *,
        kind: str | None = None,
        include_superseded: bool = False,
        limit: int = 100,
    ) -> list[Memory]:
        where: dict[str, Any] = {} if include_superseded else {"superseded_by": None}
        if kind is not None:
            where["kind"] = kind
        items = await self.store.list_items(tenant_id, namespace_of(agent_id), where, limit=limit)
        return [Memory.from_item(item) for item in items]

    async def count(self, tenant_id: str, agent_id: str) -> int:
        return await self.store.count(tenant_id, namespace_of(agent_id))

    async def forget(self, tenant_id: str, agent_id: str, memory_ids: Sequence[str]) -> int:
        """Delete memories for good (a user's explicit request, not an update)."""
        mine = [
            i.id
            for i in await self.store.get(tenant_id, memory_ids)
            if i.namespace == namespace_of(agent_id)
        ]
        return await self.store.delete(tenant_id, mine)

    async def recall(
        self,
        tenant_id: str,
        agent_id: str,
        query: str,
        *,
        k: int = 5,
        kinds: Sequence[str] | None = None,
        as_of: int | None = None,
        weights: RecallWeights | None = None,
    ) -> list[Recalled]:
        """The ``k`` memories best for ``query`` by relevance, recency and importance.

        ``as_of`` (epoch ms) answers with what was believed then: memories valid at that time,
        including ones superseded later. Without it, superseded memories are left out.
        """
        w = weights or self.weights
        where: dict[str, Any] = {}
        if kinds:
            where["kind"] = {"$in": list(kinds)}
        if as_of is None:
            where["superseded_by"] = None
        else:
            where["valid_from"] = {"$lte": as_of}
        vector = (await self.embedder.embed([query]))[0]
        hits = await self.store.search(
            tenant_id, namespace_of(agent_id), text=query, vector=vector, k=max(4 * k, 20),
            where=where,
        )  # fmt: skip
        now = self._now_ms() if as_of is None else as_of
        best_fused = 2.0 / (RRF_K + 1)  # first in both lists
        ranked: list[Recalled] = []
        for hit in hits:
            memory = Memory.from_item(hit.item)
            if (
                as_of is not None
                and memory.superseded_at is not None
                and memory.superseded_at <= as_of
            ):
                continue
            relevance = min(1.0, hit.score / best_fused)
            age_s = max(0.0, (now - memory.valid_from) / 1000)
            recency = 0.5 ** (age_s / w.half_life_s)
            score = w.relevance * relevance + w.recency * recency + w.importance * memory.importance
            ranked.append(Recalled(memory, score, relevance, recency))
        ranked.sort(key=lambda r: r.score, reverse=True)
        return ranked[:k]

    async def reembed(self, tenant_id: str, agent_id: str, *, batch_size: int = 256) -> int:
        """Re-embed memories written by another embedder; returns how many moved."""
        moved = 0
        namespace = namespace_of(agent_id)
        while stale := await self.store.stale(tenant_id, namespace, limit=batch_size):
            vectors = await self.embedder.embed([item.text for item in stale])
            await self.store.upsert(
                tenant_id,
                [
                    VectorItem(item.id, namespace, item.text, vector, item.metadata)
                    for item, vector in zip(stale, vectors, strict=True)
                ],
            )
            moved += len(stale)
        return moved
