"""The knowledge base: collections of sources, ingested, chunked, embedded and searchable
with citations.

Sources are files (added one by one or as folders), web pages (:mod:`roost.memory.knowledge_urls`)
or raw text under a caller-chosen URI.
Each source remembers the hash of its content, so a re-sync re-indexes only what changed
and removes what was deleted. Source ids derive from (collection, URI), so an ingestion
that dies half-way is repaired by the next sync rather than leaving orphans behind: the
source row is written last, after its chunks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from roost.errors import Conflict, InvalidRequest, NotFound
from roost.llm.embeddings import Embedder
from roost.memory.chunking import ChunkingPolicy, TokenCounter, chunk_text, line_of
from roost.memory.extract import MAX_FILE_BYTES, Extracted, extract_file, kind_of
from roost.memory.knowledge_folders import FolderLog
from roost.memory.knowledge_ingest import (
    WINDOW_CHUNKS,
    ChunkProgress,
    PendingSource,
    embed_sources,
)
from roost.memory.knowledge_urls import UrlSources
from roost.memory.short_term import approximate_tokens
from roost.memory.vector_store import SearchMode, VectorItem, VectorStore, Where
from roost.storage import Database, new_id, now_ms
from roost.tools.netguard import NetworkPolicy

Progress = Callable[[int, int, str], None]  # done, total, uri
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__",
                       ".mypy_cache", ".ruff_cache", ".pytest_cache", "dist", "build"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    name: str
    description: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    uri: str
    kind: str
    content_hash: str
    num_chunks: int
    num_bytes: int
    metadata: dict[str, Any]
    updated_at: int


@dataclass(slots=True)
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # uri, reason
    num_chunks: int = 0  # chunks embedded by this run


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """A search result with everything a citation needs."""

    text: str
    score: float
    collection: str
    source_id: str
    uri: str
    title: str
    chunk_index: int
    start: int  # character offsets in the extracted text of the source
    end: int
    line_start: int
    line_end: int
    page: int | None = None  # PDFs: pages the chunk spans
    page_end: int | None = None

    @property
    def citation(self) -> str:
        if self.page and self.page_end and self.page_end != self.page:
            where = f"pp. {self.page}-{self.page_end}"
        elif self.page:
            where = f"p. {self.page}"
        else:
            where = f"lines {self.line_start}-{self.line_end}"
        return f"{self.uri} ({where})"


def namespace_of(collection_id: str) -> str:
    return f"kb:{collection_id}"


class KnowledgeBase:
    """Collections, ingestion, re-sync and cited search over a :class:`VectorStore`."""

    def __init__(
        self,
        database: Database,
        store: VectorStore,
        embedder: Embedder,
        *,
        policy: ChunkingPolicy | None = None,
        count_tokens: TokenCounter | None = None,
        network: NetworkPolicy | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.embedder = embedder
        self.policy = policy or ChunkingPolicy()
        self.folders = FolderLog(database)
        self.urls = UrlSources(self, network)  # network None: no URL sources here
        # Chunks must fit the embedder's window, so its tokenizer counts when it has one.
        counter: TokenCounter = getattr(embedder, "count_tokens", approximate_tokens)
        self.count_tokens: TokenCounter = count_tokens or counter

    # collections -------------------------------------------------------------------------

    async def create_collection(
        self, tenant_id: str, name: str, description: str = ""
    ) -> Collection:
        if not name or len(name) > 100 or "/" in name:
            raise InvalidRequest("a collection name is 1-100 characters without '/'", param="name")
        if await self._find(tenant_id, name) is not None:
            raise Conflict(f"collection {name!r} exists already")
        collection = Collection(new_id("kb"), name, description, now_ms())
        await self.database.execute(
            "INSERT INTO kb_collections (tenant_id, id, name, description, created_at)"
            " VALUES (:t, :id, :name, :d, :at)",
            {
                "t": tenant_id,
                "id": collection.id,
                "name": name,
                "d": description,
                "at": collection.created_at,
            },
        )
        return collection

    async def ensure_collection(self, tenant_id: str, name: str) -> Collection:
        return await self._find(tenant_id, name) or await self.create_collection(tenant_id, name)

    async def collection(self, tenant_id: str, name_or_id: str) -> Collection:
        found = await self._find(tenant_id, name_or_id)
        if found is None:
            raise NotFound(f"no knowledge collection {name_or_id!r}")
        return found

    async def _find(self, tenant_id: str, name_or_id: str) -> Collection | None:
        row = await self.database.fetch_one(
            "SELECT * FROM kb_collections WHERE tenant_id = :t AND (id = :n OR name = :n)",
            {"t": tenant_id, "n": name_or_id},
        )
        return (
            None
            if row is None
            else Collection(row["id"], row["name"], row["description"], int(row["created_at"]))
        )

    async def list_collections(self, tenant_id: str) -> list[Collection]:
        rows = await self.database.fetch_all(
            "SELECT * FROM kb_collections WHERE tenant_id = :t ORDER BY name", {"t": tenant_id}
        )
        return [
            Collection(r["id"], r["name"], r["description"], int(r["created_at"])) for r in rows
        ]

    async def delete_collection(self, tenant_id: str, name_or_id: str) -> None:
        collection = await self.collection(tenant_id, name_or_id)
        await self.store.delete_where(tenant_id, namespace_of(collection.id))
        await self.folders.forget(tenant_id, collection.id)
        await self.urls.forget(tenant_id, collection.id)
        async with self.database.transaction() as conn:
            for table, column in (("kb_sources", "collection_id"), ("kb_collections", "id")):
                await conn.execute(
                    text(f"DELETE FROM {table} WHERE tenant_id = :t AND {column} = :c"),
                    {"t": tenant_id, "c": collection.id},
                )

    # sources -----------------------------------------------------------------------------

    async def sources(self, tenant_id: str, collection: str) -> list[Source]:
        found = await self.collection(tenant_id, collection)
        rows = await self.database.fetch_all(
            "SELECT * FROM kb_sources WHERE tenant_id = :t AND collection_id = :c ORDER BY uri",
            {"t": tenant_id, "c": found.id},
        )
        return [_source(r) for r in rows]

    async def add_text(
        self, tenant_id: str, collection: str, uri: str, text: str, *, kind: str = "text",
        title: str = "", metadata: dict[str, Any] | None = None,
        on_chunks: ChunkProgress | None = None,
    ) -> str:  # fmt: skip
        """Index raw text under ``uri``; returns ``added``, ``updated`` or ``unchanged``."""
        if not uri:
            raise InvalidRequest("a source needs a uri", param="uri")
        found = await self.collection(tenant_id, collection)
        extracted = Extracted(text, kind, title or uri, metadata=dict(metadata or {}))
        digest = hashlib.sha256(text.encode()).hexdigest()
        pending = await self._prepare(
            tenant_id, found, uri, extracted, digest, len(text.encode()), {}
        )
        if pending is None:
            return "unchanged"
        await embed_sources(self.embedder, [pending], progress=on_chunks)
        await self._write(tenant_id, found, pending)
        return "added" if pending.is_new else "updated"

    async def add_path(
        self, tenant_id: str, collection: str, path: str | Path, *, progress: Progress | None = None,
        on_chunks: ChunkProgress | None = None,
    ) -> SyncReport:  # fmt: skip
        """Index a file or every readable file under a folder (new and changed ones)."""
        found = await self.collection(tenant_id, collection)
        root, files = await asyncio.to_thread(_files_under, path)
        report = SyncReport()
        await self._ingest(
            tenant_id, found, [(f, root) for f in files], report, progress, on_chunks
        )
        if await asyncio.to_thread(root.is_dir):
            await self.folders.record(
                tenant_id, found.id, str(root), num_files=len(files), failed=report.failed
            )
        return report

    async def sync(
        self, tenant_id: str, collection: str, *, progress: Progress | None = None,
        on_chunks: ChunkProgress | None = None,
    ) -> SyncReport:  # fmt: skip
        """Re-sync every folder and file added before: changed files re-indexed, new ones
        added, deleted ones removed (with their chunks)."""
        found = await self.collection(tenant_id, collection)
        known = [s for s in await self.sources(tenant_id, found.id) if "root" in s.metadata]
        folders = [Path(f.root) for f in await self.folders.of(tenant_id, found.id)]
        roots = sorted({Path(s.metadata["root"]) for s in known} | set(folders))
        files = sorted(
            {
                f: r for r in roots for f in await asyncio.to_thread(_files, r, missing_ok=True)
            }.items()
        )
        report = SyncReport()
        present = {str(f) for f, _ in files}
        for source in known:
            if source.uri not in present:
                await self._remove(tenant_id, found, source)
                report.removed.append(source.uri)
        await self._ingest(tenant_id, found, files, report, progress, on_chunks)
        for root in folders:
            under = sum(1 for _, r in files if r == root)
            await self.folders.record(
                tenant_id, found.id, str(root), num_files=under, failed=report.failed
            )
        await self.urls.sync(tenant_id, found, report, on_chunks)
        return report

    async def add_url(self, tenant_id: str, collection: str, url: str) -> SyncReport:
        """Index a web page (fetched through the SSRF guard) and re-sync it with the rest."""
        return await self.urls.add(tenant_id, await self.collection(tenant_id, collection), url)

    async def remove_url(self, tenant_id: str, collection: str, url: str) -> None:
        await self.urls.remove(tenant_id, await self.collection(tenant_id, collection), url)

    async def remove_source(self, tenant_id: str, collection: str, uri: str) -> None:
        found = await self.collection(tenant_id, collection)
        source = next((s for s in await self.sources(tenant_id, found.id) if s.uri == uri), None)
        if source is None:
            raise NotFound(f"no source {uri!r} in {found.name!r}")
        await self._remove(tenant_id, found, source)

    async def _remove(self, tenant_id: str, collection: Collection, source: Source) -> None:
        await self.store.delete_where(
            tenant_id, namespace_of(collection.id), {"source_id": source.id}
        )
        await self.database.execute(
            "DELETE FROM kb_sources WHERE tenant_id = :t AND id = :id",
            {"t": tenant_id, "id": source.id},
        )

    async def _ingest(
        self, tenant_id: str, collection: Collection, files: list[tuple[Path, Path]],
        report: SyncReport, progress: Progress | None, on_chunks: ChunkProgress | None,
    ) -> None:  # fmt: skip
        """Read and chunk files until a window of chunks is held, embed the window in one
        length-sorted pass (:mod:`roost.memory.knowledge_ingest`), write it, go on."""
        pending: list[PendingSource] = []
        done = 0

        def finished(uri: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, len(files), uri)

        async def flush() -> None:
            await embed_sources(self.embedder, pending, progress=on_chunks)
            for source in pending:
                try:
                    await self._write(tenant_id, collection, source)
                except OSError as exc:  # this source only: the next sync redoes it
                    report.failed.append((source.uri, str(exc)))
                else:
                    report.num_chunks += len(source.chunks)
                    (report.added if source.is_new else report.updated).append(source.uri)
                finished(source.uri)
            pending.clear()

        for file, root in files:
            prepared = await self._prepare_file(tenant_id, collection, file, root, report)
            if prepared is None:
                finished(str(file))
                continue
            pending.append(prepared)
            if sum(len(p.chunks) for p in pending) >= WINDOW_CHUNKS:
                await flush()
        if pending:
            await flush()

    async def _prepare_file(
        self, tenant_id: str, collection: Collection, file: Path, root: Path, report: SyncReport
    ) -> PendingSource | None:
        """The file chunked when it changed; None (and the report told) when it did not or
        cannot be read."""
        uri = str(file)
        try:
            data = await asyncio.to_thread(file.read_bytes)
            if len(data) > MAX_FILE_BYTES:
                raise InvalidRequest(f"larger than {MAX_FILE_BYTES} bytes")
            digest = hashlib.sha256(data).hexdigest()
            existing = await self._source_row(tenant_id, collection, uri)
            if existing is not None and existing.content_hash == digest:
                report.unchanged.append(uri)
                return None
            extracted = extract_file(file, data)
            meta = {
                "root": str(root),
                "path": str(file.relative_to(root)) if file != root else file.name,
            }
            return await self._prepare(
                tenant_id, collection, uri, extracted, digest, len(data), meta
            )
        except (OSError, InvalidRequest) as exc:
            report.failed.append((uri, getattr(exc, "message", None) or str(exc)))
            return None

    async def _source_row(self, tenant_id: str, collection: Collection, uri: str) -> Source | None:
        row = await self.database.fetch_one(
            "SELECT * FROM kb_sources WHERE tenant_id = :t AND collection_id = :c AND uri = :u",
            {"t": tenant_id, "c": collection.id, "u": uri},
        )
        return None if row is None else _source(row)

    async def _prepare(
        self, tenant_id: str, collection: Collection, uri: str, extracted: Extracted,
        digest: str, num_bytes: int, meta: dict[str, Any],
    ) -> PendingSource | None:  # fmt: skip
        existing = await self._source_row(tenant_id, collection, uri)
        if existing is not None and existing.content_hash == digest:
            return None
        chunks = await asyncio.to_thread(
            chunk_text, extracted.text, policy=self.policy, count_tokens=self.count_tokens,
            language=extracted.language if extracted.kind == "code" else None,
        )  # fmt: skip
        return PendingSource(uri, extracted, digest, num_bytes, meta, existing is None, chunks)

    async def _write(self, tenant_id: str, collection: Collection, pending: PendingSource) -> None:
        """Replace the source's chunks with the new ones, then record the source."""
        assert pending.vectors is not None, "embed_sources() first"
        uri, extracted = pending.uri, pending.extracted
        source_id = (
            "src_" + hashlib.sha256(f"{tenant_id}|{collection.id}|{uri}".encode()).hexdigest()[:24]
        )
        namespace = namespace_of(collection.id)
        newlines = [i for i, ch in enumerate(extracted.text) if ch == "\n"]
        await self.store.delete_where(tenant_id, namespace, {"source_id": source_id})
        if pending.chunks:
            await self.store.upsert(
                tenant_id,
                [
                    VectorItem(
                        id=f"{source_id}:{chunk.index}",
                        namespace=namespace,
                        text=chunk.text,
                        vector=vector,
                        metadata={
                            "source_id": source_id,
                            "uri": uri,
                            "title": extracted.title,
                            "kind": extracted.kind,
                            "chunk_index": chunk.index,
                            "start": chunk.start,
                            "end": chunk.end,
                            "line_start": line_of(extracted.text, chunk.start, newlines),
                            "line_end": line_of(extracted.text, chunk.end, newlines),
                            "page": _page(extracted.page_starts, chunk.start),
                            "page_end": _page(
                                extracted.page_starts, max(chunk.start, chunk.end - 1)
                            ),
                        },
                    )
                    for chunk, vector in zip(pending.chunks, pending.vectors, strict=True)
                ],
            )
        # Written last: a crash before this line leaves the old hash, so the next sync redoes it.
        params = {
            "t": tenant_id, "id": source_id, "c": collection.id, "u": uri, "k": extracted.kind,
            "h": pending.digest, "n": len(pending.chunks), "b": pending.num_bytes,
            "m": json.dumps({**extracted.metadata, **pending.meta, "title": extracted.title}),
            "at": now_ms(),
        }  # fmt: skip
        await self.database.execute(
            "INSERT INTO kb_sources (tenant_id, id, collection_id, uri, kind, content_hash,"
            " num_chunks, num_bytes, metadata, updated_at) VALUES (:t, :id, :c, :u, :k, :h, :n,"
            " :b, :m, :at) ON CONFLICT (tenant_id, id) DO UPDATE SET kind = excluded.kind,"
            " content_hash = excluded.content_hash, num_chunks = excluded.num_chunks,"
            " num_bytes = excluded.num_bytes, metadata = excluded.metadata,"
            " updated_at = excluded.updated_at",
            params,
        )

    # search ------------------------------------------------------------------------------

    async def search(
        self, tenant_id: str, collection: str, query: str, *, k: int = 5,
        mode: SearchMode = "hybrid", where: Where | None = None,
    ) -> list[KnowledgeHit]:  # fmt: skip
        """The best chunks for ``query`` with their source and position."""
        found = await self.collection(tenant_id, collection)
        vector = (await self.embedder.embed([query]))[0] if mode != "keyword" else None
        hits = await self.store.search(
            tenant_id,
            namespace_of(found.id),
            text=query,
            vector=vector,
            k=k,
            mode=mode,
            where=where,
        )
        return [
            KnowledgeHit(
                text=hit.item.text,
                score=hit.score,
                collection=found.name,
                source_id=m["source_id"],
                uri=m["uri"],
                title=m.get("title", ""),
                chunk_index=int(m["chunk_index"]),
                start=int(m["start"]),
                end=int(m["end"]),
                line_start=int(m["line_start"]),
                line_end=int(m["line_end"]),
                page=m.get("page"),
                page_end=m.get("page_end"),
            )
            for hit in hits
            for m in [hit.item.metadata]
        ]


def _files_under(path: str | Path) -> tuple[Path, list[Path]]:
    root = Path(path).expanduser().resolve()
    return root, _files(root)


def _files(root: Path, *, missing_ok: bool = False) -> list[Path]:
    if not root.exists():
        if missing_ok:
            return []
        raise NotFound(f"{root} does not exist")
    return sorted(_walk(root))


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file():
        if kind_of(root) is not None:
            yield root
        return
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            file = Path(directory) / name
            if not name.startswith(".") and kind_of(file) is not None:
                yield file


def _page(page_starts: list[int], offset: int) -> int | None:
    if not page_starts:
        return None
    page = 0
    for number, start in enumerate(page_starts, start=1):
        if start <= offset:
            page = number
    return page or 1


def _source(row: dict[str, Any]) -> Source:
    return Source(
        id=row["id"], uri=row["uri"], kind=row["kind"], content_hash=row["content_hash"],
        num_chunks=int(row["num_chunks"]), num_bytes=int(row["num_bytes"]),
        metadata=json.loads(row["metadata"]), updated_at=int(row["updated_at"]),
    )  # fmt: skip
