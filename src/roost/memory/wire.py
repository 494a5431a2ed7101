"""Memories and knowledge as JSON: one shape for the HTTP API and ``roost ... --json``, so
a script reads the same fields whether it asked a server or this machine's store."""

from __future__ import annotations

from typing import Any

from roost.memory.knowledge import Collection, KnowledgeHit, Source, SyncReport
from roost.memory.long_term import Memory, Recalled


def memory_json(memory: Memory) -> dict[str, Any]:
    return {
        "id": memory.id, "object": "memory", "agent_id": memory.agent_id, "text": memory.text,
        "kind": memory.kind, "importance": memory.importance, "valid_from": memory.valid_from,
        "superseded_by": memory.superseded_by, "superseded_at": memory.superseded_at,
        "source": memory.source, "metadata": memory.metadata, "created_at": memory.created_at,
    }  # fmt: skip


def recalled_json(found: Recalled) -> dict[str, Any]:
    return {**memory_json(found.memory), "score": found.score, "relevance": found.relevance,
            "recency": found.recency}  # fmt: skip


def collection_json(c: Collection) -> dict[str, Any]:
    return {"id": c.id, "object": "knowledge.collection", "name": c.name,
            "description": c.description, "created_at": c.created_at}  # fmt: skip


def source_json(s: Source) -> dict[str, Any]:
    return {"id": s.id, "object": "knowledge.source", "uri": s.uri, "kind": s.kind,
            "content_hash": s.content_hash, "num_chunks": s.num_chunks, "num_bytes": s.num_bytes,
            "title": s.metadata.get("title", ""), "updated_at": s.updated_at}  # fmt: skip


def hit_json(h: KnowledgeHit) -> dict[str, Any]:
    return {
        "text": h.text, "score": h.score, "citation": h.citation, "uri": h.uri, "title": h.title,
        "source_id": h.source_id, "chunk_index": h.chunk_index, "start": h.start, "end": h.end,
        "line_start": h.line_start, "line_end": h.line_end, "page": h.page, "page_end": h.page_end,
    }  # fmt: skip


def report_json(r: SyncReport) -> dict[str, Any]:
    return {"added": r.added, "updated": r.updated, "unchanged": len(r.unchanged),
            "removed": r.removed, "failed": [{"uri": u, "reason": why} for u, why in r.failed],
            "num_chunks": r.num_chunks}  # fmt: skip
