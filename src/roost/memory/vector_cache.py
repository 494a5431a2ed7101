"""An in-memory copy of a SQLite store's vectors, for exact search at numpy speed.

sqlite-vec scans vectors page by page through SQLite; a contiguous float32 matrix scanned
with one matrix-vector product is several times faster and still exact. The cache holds
one matrix per (tenant, namespace), filled on first search, patched in place by the
store's own writes, and dropped whole when another connection commits (SQLite's
``data_version`` tells). A budget caps the vectors held; past it the least recently used
namespaces go, and a namespace larger than the budget is simply not cached.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

Key = tuple[str, str]  # tenant, namespace


@dataclass(slots=True)
class _Entry:
    matrix: np.ndarray  # [capacity, D] unit rows; rows past ``size`` are spare
    rowids: np.ndarray  # [capacity] int64, -1 where deleted or spare
    size: int
    position: dict[int, int] = field(default_factory=dict)  # rowid -> row

    @property
    def live(self) -> int:
        return len(self.position)


class VectorCache:
    def __init__(self, dimension: int, max_vectors: int = 500_000) -> None:
        self.dimension = dimension
        self.max_vectors = max_vectors
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def clear(self, tenant_id: str | None = None) -> int:
        """Forget cached namespaces (of one tenant, or all); return vectors dropped. The
        store reloads a namespace on its next search."""
        doomed = [key for key in self._entries if tenant_id in (None, key[0])]
        dropped = sum(self._entries[key].live for key in doomed)
        for key in doomed:
            del self._entries[key]
        return dropped

    def summary(self, tenant_id: str | None = None) -> tuple[int, int]:
        """Vectors held and bytes of their matrices (of one tenant, or all)."""
        entries = [e for key, e in self._entries.items() if tenant_id in (None, key[0])]
        return sum(e.live for e in entries), sum(e.matrix.nbytes for e in entries)

    def load(self, key: Key, rowids: list[int], vectors: list[bytes]) -> bool:
        """Cache a namespace from its stored rows; False when it is over the budget."""
        if len(rowids) > self.max_vectors:
            return False
        matrix = np.frombuffer(b"".join(vectors), dtype=np.float32).reshape(-1, self.dimension)
        entry = _Entry(_unit(matrix), np.asarray(rowids, dtype=np.int64), len(rowids))
        entry.position = {rowid: row for row, rowid in enumerate(rowids)}
        self._entries[key] = entry
        self._evict()
        return True

    def upsert(self, key: Key, rowid: int, vector: np.ndarray) -> None:
        """Reflect a write of the store itself (no-op for namespaces not cached)."""
        entry = self._entries.get(key)
        if entry is None:
            return
        row = entry.position.get(rowid)
        if row is None:
            if entry.size == entry.matrix.shape[0]:  # grow by doubling: amortised O(1)
                grown = max(16, 2 * entry.size)
                entry.matrix = np.resize(entry.matrix, (grown, self.dimension))
                entry.rowids = np.concatenate([entry.rowids, np.full(grown - entry.size, -1)])
            row = entry.size
            entry.size += 1
            entry.position[rowid] = row
        entry.matrix[row] = _unit(vector.reshape(1, -1))[0]
        entry.rowids[row] = rowid

    def delete(self, rowids: list[int]) -> None:
        """Forget rows in whichever namespace holds them."""
        for entry in self._entries.values():
            for rowid in rowids:
                row = entry.position.pop(rowid, None)
                if row is not None:
                    entry.rowids[row] = -1
                    entry.matrix[row] = 0.0

    def search(self, key: Key, query: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """``(rowid, cosine distance)`` of the ``depth`` nearest rows, nearest first."""
        entry = self._entries[key]
        self._entries.move_to_end(key)
        if entry.live == 0:
            return []
        sims = entry.matrix[: entry.size] @ _unit(query.reshape(1, -1))[0]
        sims[entry.rowids[: entry.size] < 0] = -np.inf
        take = min(depth, entry.live)
        best = (
            np.argpartition(-sims, take - 1)[:take] if take < entry.size else np.arange(entry.size)
        )
        best = best[np.argsort(-sims[best], kind="stable")][:take]
        return [(int(entry.rowids[i]), float(1.0 - sims[i])) for i in best]

    def _evict(self) -> None:
        while (
            sum(e.size for e in self._entries.values()) > self.max_vectors
            and len(self._entries) > 1
        ):
            self._entries.popitem(last=False)


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)
