"""A repository map and keyword code search over symbol chunks.

Symbols come from Python's ``ast`` and, for JS/TS, Go, Rust and the other languages of
``roost.tools.builtin.code``, from tree-sitter (``tree-sitter-language-pack``); files no
parser reads are indexed as whole-file text chunks. Each definition is a chunk (its line
range); search scores chunks by the query's words (tf·idf, with a bonus when a word is
in the symbol's name). The index lives in process memory per workspace and is refreshed
incrementally: a file is parsed again only when its size or mtime changed.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.tools.base import ToolFailure
from roost.tools.builtin.code import _language, _symbols

SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", "target", "dist"})
MAX_FILE_BYTES = 512 * 1024
MAX_FILES = 5000
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def words(text: str) -> list[str]:
    """Lower-case words, with snake_case and camelCase split as well as kept whole."""
    found: list[str] = []
    for word in _WORD.findall(text):
        lower = word.lower()
        found.append(lower)
        parts = [p.lower() for p in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", word)]
        parts = [p for part in parts for p in part.split("_") if p]
        if len(parts) > 1:
            found.extend(parts)
    return found


@dataclass(frozen=True, slots=True)
class Chunk:
    path: str
    symbol: str | None
    kind: str
    start: int
    end: int
    text: str


@dataclass(slots=True)
class _FileEntry:
    stamp: tuple[int, int]
    language: str | None
    symbols: list[dict[str, Any]]
    chunks: list[Chunk]


@dataclass(slots=True)
class RepoIndex:
    """The map and chunks of one workspace; :meth:`refresh` re-reads changed files only."""

    root: Path
    files: dict[str, _FileEntry] = field(default_factory=dict)
    num_parsed: int = 0  # files (re-)parsed since creation, to show refreshes are incremental

    def refresh(self) -> None:
        seen: set[str] = set()
        for path in _source_files(self.root):
            relative = path.relative_to(self.root).as_posix()
            seen.add(relative)
            stat = path.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
            entry = self.files.get(relative)
            if entry is not None and entry.stamp == stamp:
                continue
            self.files[relative] = _parse(relative, path, stamp)
            self.num_parsed += 1
        for gone in set(self.files) - seen:
            del self.files[gone]

    def repo_map(self, max_symbols: int = 400) -> dict[str, Any]:
        """Files with their top-level symbols (name, kind, line)."""
        listed: list[dict[str, Any]] = []
        budget = max_symbols
        for path in sorted(self.files):
            entry = self.files[path]
            symbols = [
                {"name": s["qualified_name"], "kind": s["kind"], "line": s["line"]}
                for s in entry.symbols[: max(0, budget)]
            ]
            budget -= len(symbols)
            listed.append({"path": path, "language": entry.language, "symbols": symbols})
        return {"files": listed, "num_files": len(listed)}

    def search(self, query: str, k: int = 8) -> list[dict[str, Any]]:
        terms = set(words(query))
        if not terms:
            raise ToolFailure("the query has no words to search for", type="empty_query")
        chunks = [c for entry in self.files.values() for c in entry.chunks]
        counted = [(c, Counter(words(c.text)), set(words(c.symbol or ""))) for c in chunks]
        document_frequency = Counter(t for _, counts, _ in counted for t in set(counts) & terms)
        hits: list[tuple[float, Chunk]] = []
        for chunk, counts, names in counted:
            score = 0.0
            for term in terms:
                if counts[term]:
                    idf = math.log(1 + len(chunks) / (1 + document_frequency[term]))
                    score += (1 + math.log(counts[term])) * idf
                    if term in names:
                        score += 2 * idf
            if score > 0:
                hits.append((score, chunk))
        hits.sort(key=lambda item: (-item[0], item[1].path, item[1].start))
        return [
            {"path": c.path, "symbol": c.symbol, "kind": c.kind, "lines": [c.start, c.end],
             "score": round(score, 3), "snippet": c.text[:600]}
            for score, c in hits[:k]
        ]  # fmt: skip


def _source_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            path = Path(directory) / name
            if name.startswith(".") or path.is_symlink():
                continue
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            found.append(path)
            if len(found) >= MAX_FILES:
                return found
    return found


def _parse(relative: str, path: Path, stamp: tuple[int, int]) -> _FileEntry:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        return _FileEntry(stamp, None, [], [])
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    try:
        language: str | None = _language(relative)
        symbols = _symbols(text, language) if language else []
    except ToolFailure:  # no parser for this suffix, or a syntax error: text only
        language, symbols = None, []
    chunks = [
        Chunk(relative, s["qualified_name"], str(s["kind"]), s["line"], s["end_line"] or s["line"],
              "\n".join(lines[s["line"] - 1 : (s["end_line"] or s["line"])]))
        for s in symbols
    ]  # fmt: skip
    if not chunks:
        chunks = [Chunk(relative, None, "file", 1, max(1, len(lines)), text[:4000])]
    return _FileEntry(stamp, language, symbols, chunks)


_INDEXES: dict[Path, RepoIndex] = {}


def index_for(root: Path) -> RepoIndex:
    """The workspace's index, refreshed (only changed files are parsed again)."""
    index = _INDEXES.get(root)
    if index is None:
        index = _INDEXES[root] = RepoIndex(root)
    index.refresh()
    return index
