"""Semantic code search kept in the knowledge base, one collection per workspace.

Each symbol chunk of the repository index (``ast``/tree-sitter definitions, or whole-file
text) is a knowledge source of the workspace's collection (``code:<agent>`` in the
caller's tenant, so tenants never see each other's code), embedded by the knowledge
base's embedder (all-MiniLM-L6-v2 in a default deployment) behind its embedding cache.

Re-syncs are incremental from git: the files named by ``git diff --name-only <last
indexed commit>`` (committed and uncommitted changes) plus untracked files are re-read;
the rest is left alone. Without a previous commit (first sync, or not a git repository)
every file is read; unchanged chunks still cost nothing, since a source whose text hash
is unchanged is not embedded again.

Search fuses the keyword ranking of :class:`roost.coding.repo_index.RepoIndex` with the
knowledge base's vector ranking by reciprocal rank fusion (each list contributes
``1 / (RRF_K + rank)``), so a query that shares no word with the code still finds it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.coding.repo_index import Chunk, RepoIndex, index_for
from roost.errors import NotFound
from roost.memory.knowledge import KnowledgeBase

RRF_K = 60  # the constant of Cormack et al.: later ranks still count, top ranks dominate
STATE_URI = "roost:code-index-state"  # the last indexed commit, kept with the collection
CANDIDATES = 30  # per ranking, before fusion


def collection_name(agent: str) -> str:
    return f"code:{agent}"


@dataclass(slots=True)
class CodeSyncReport:
    commit: str | None
    full: bool  # every file was read (no previous commit to diff against)
    files: list[str] = field(default_factory=list)  # files re-read this time
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "full": self.full, "files": self.files,
                "added": self.added, "updated": self.updated, "removed": self.removed,
                "unchanged": self.unchanged}  # fmt: skip


class CodeKnowledge:
    """The workspace ``root`` of ``tenant_id`` in collection ``code:<agent>``."""

    def __init__(self, kb: KnowledgeBase, tenant_id: str, root: Path, agent: str) -> None:
        self.kb = kb
        self.tenant_id = tenant_id
        self.root = root
        self.collection = collection_name(agent)

    async def sync(self) -> CodeSyncReport:
        """Bring the collection up to the workspace (incrementally when git allows)."""
        await self.kb.ensure_collection(self.tenant_id, self.collection)
        index = await asyncio.to_thread(index_for, self.root)
        state = await self._state()
        head = await asyncio.to_thread(_git_head, self.root)
        changed = (
            await asyncio.to_thread(_changed_since, self.root, state["commit"])
            if state.get("commit")
            else None
        )
        report = CodeSyncReport(head, changed is None)
        known = await self._sources_by_path()
        paths = sorted(set(index.files) | set(known)) if changed is None else sorted(changed)
        for path in paths:
            await self._sync_file(index, path, known.get(path, set()), report)
        await self.kb.add_text(
            self.tenant_id, self.collection, STATE_URI, json.dumps({"commit": head}),
            kind="state", metadata={"commit": head},
        )  # fmt: skip
        return report

    async def search(self, query: str, k: int = 8) -> list[dict[str, Any]]:
        """Keyword and semantic rankings fused by reciprocal rank."""
        index = await asyncio.to_thread(index_for, self.root)
        keyword = await asyncio.to_thread(index.search, query, CANDIDATES)
        try:
            semantic = await self.kb.search(
                self.tenant_id, self.collection, query, k=CANDIDATES + 1, mode="vector"
            )
        except NotFound:  # never synced: keyword only
            semantic = []
        fused: dict[tuple[str, int], dict[str, Any]] = {}
        for position, found in enumerate(keyword):
            key = (found["path"], found["lines"][0])
            entry = fused.setdefault(key, {**found, "rrf": 0.0, "ranks": {}})
            entry["rrf"] += 1 / (RRF_K + position + 1)
            entry["ranks"]["keyword"] = position + 1
        rank = 0
        for hit in semantic:
            if hit.uri == STATE_URI:
                continue
            path, start = _parse_uri(hit.uri)
            key = (path, start)
            if "semantic" in fused.get(key, {}).get("ranks", {}):
                continue  # a long chunk split in parts: its best part ranks it
            rank += 1
            chunk = _chunk_at(index, path, start)
            if chunk is None:
                continue  # the file changed since the last sync: the keyword side has it
            entry = fused.setdefault(key, {**_describe(chunk), "rrf": 0.0, "ranks": {}})
            entry["rrf"] += 1 / (RRF_K + rank)
            entry["ranks"]["semantic"] = rank
        ranked = sorted(fused.values(), key=lambda e: (-e["rrf"], e["path"], e["lines"][0]))
        for entry in ranked:
            entry["score"] = round(entry.pop("rrf"), 5)
        return ranked[:k]

    # -- helpers ------------------------------------------------------------------------
    async def _state(self) -> dict[str, Any]:
        for source in await self.kb.sources(self.tenant_id, self.collection):
            if source.uri == STATE_URI:
                return dict(source.metadata)
        return {}

    async def _sources_by_path(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for source in await self.kb.sources(self.tenant_id, self.collection):
            if source.uri != STATE_URI:
                found.setdefault(_parse_uri(source.uri)[0], set()).add(source.uri)
        return found

    async def _sync_file(
        self, index: RepoIndex, path: str, known: set[str], report: CodeSyncReport
    ) -> None:
        report.files.append(path)
        entry = index.files.get(path)
        current: set[str] = set()
        for chunk in entry.chunks if entry is not None else []:
            uri = _uri(chunk)
            current.add(uri)
            state = await self.kb.add_text(
                self.tenant_id, self.collection, uri, _embedded_text(chunk), kind="code",
                title=chunk.symbol or path,
                metadata={"path": path, "symbol": chunk.symbol, "start": chunk.start},
            )  # fmt: skip
            setattr(report, state, getattr(report, state) + 1)
        for uri in known - current:
            await self.kb.remove_source(self.tenant_id, self.collection, uri)
            report.removed += 1


def _uri(chunk: Chunk) -> str:
    return f"code:{chunk.path}#L{chunk.start}:{chunk.symbol or ''}"


def _parse_uri(uri: str) -> tuple[str, int]:
    body = uri.removeprefix("code:")
    path, _, rest = body.rpartition("#L")
    return path, int(rest.split(":", 1)[0] or 0)


def _embedded_text(chunk: Chunk) -> str:
    # The path and name help the embedding place the chunk; the code is the rest.
    return f"{chunk.path} {chunk.symbol or ''}\n{chunk.text}"


def _chunk_at(index: RepoIndex, path: str, start: int) -> Chunk | None:
    entry = index.files.get(path)
    if entry is None:
        return None
    return next((c for c in entry.chunks if c.start == start), None)


def _describe(chunk: Chunk) -> dict[str, Any]:
    return {"path": chunk.path, "symbol": chunk.symbol, "kind": chunk.kind,
            "lines": [chunk.start, chunk.end], "snippet": chunk.text[:600]}  # fmt: skip


def _git(root: Path, *args: str) -> str | None:
    # The workspace belongs to the sandbox's user: git's ownership check would refuse it.
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "-C", str(root), "-c", "safe.directory=*", *args],  # noqa: S607
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout if done.returncode == 0 else None


def _git_head(root: Path) -> str | None:
    out = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    return out.strip() if out else None


def _changed_since(root: Path, commit: str) -> set[str] | None:
    """Files changed since ``commit`` (committed or not) and untracked files; None when
    git cannot say (the commit is gone, or this is no longer a repository)."""
    diff = _git(root, "diff", "--name-only", commit)
    untracked = _git(root, "ls-files", "--others", "--exclude-standard")
    if diff is None or untracked is None:
        return None
    return {line for line in (diff + untracked).splitlines() if line.strip()}
