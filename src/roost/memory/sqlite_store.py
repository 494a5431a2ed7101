"""The embedded vector store: one SQLite file with sqlite-vec for vectors and FTS5 for text.

Opened through apsw because the stdlib sqlite3 of many Pythons cannot load extensions.
Vector search is exact: a sqlite-vec ``vec0`` scan partitioned by tenant, or, under a
metadata filter, an exact distance over the rows that pass the filter (so a filter never
hides a match that an approximate index would have dropped).

One connection serves the process; calls run in a worker thread behind a lock, which is
what SQLite allows anyway (one writer), and keeps the event loop free.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import apsw
import numpy as np
import sqlite_vec

from roost.memory.vector_cache import VectorCache
from roost.memory.vector_store import (
    SearchHit,
    SearchMode,
    StoredItem,
    VectorItem,
    Where,
    candidate_count,
    check_vector,
    check_where,
    fts_phrases,
    fuse,
)
from roost.storage import now_ms

T = TypeVar("T")
_COLUMNS = (
    "i.id, i.tenant_id, i.namespace, i.text, i.metadata, i.embedder, i.created_at, i.updated_at"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_items (
  rowid INTEGER PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  namespace TEXT NOT NULL,
  text TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  embedder TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS memory_items_ns ON memory_items (tenant_id, namespace, embedder);
CREATE TABLE IF NOT EXISTS memory_spaces (
  table_name TEXT PRIMARY KEY, embedder TEXT NOT NULL, dimension INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(
  text, content='memory_items', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS memory_items_ai AFTER INSERT ON memory_items BEGIN
  INSERT INTO memory_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS memory_items_ad AFTER DELETE ON memory_items BEGIN
  INSERT INTO memory_fts (memory_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS memory_items_au AFTER UPDATE OF text ON memory_items BEGIN
  INSERT INTO memory_fts (memory_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
  INSERT INTO memory_fts (rowid, text) VALUES (new.rowid, new.text);
END;
"""


def space_table(embedder_id: str, dimension: int) -> str:
    """Name of the vector table of one embedding space (a name SQL can hold unquoted)."""
    digest = hashlib.sha256(f"{embedder_id}|{dimension}".encode()).hexdigest()[:12]
    return f"memory_vec_{digest}"


class SqliteVectorStore:
    """:class:`~roost.memory.vector_store.VectorStore` on one SQLite file."""

    def __init__(
        self, path: str | Path, *, embedder_id: str, dimension: int, cache_vectors: int = 500_000
    ) -> None:
        self._embedder_id = embedder_id
        self._dimension = dimension
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = apsw.Connection(self.path)
        self._conn.enable_load_extension(True)
        self._conn.load_extension(sqlite_vec.loadable_path())
        self._conn.enable_load_extension(False)
        self._conn.set_busy_timeout(10_000)
        self._conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
        self._table = space_table(embedder_id, dimension)
        with self._conn:
            self._conn.execute(_SCHEMA)
            self._conn.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {self._table} USING vec0("
                f" tenant_id TEXT PARTITION KEY, namespace TEXT,"
                f" embedding float[{dimension}] distance_metric=cosine)"
            )
            self._conn.execute(
                "INSERT OR IGNORE INTO memory_spaces VALUES (?, ?, ?)",
                (self._table, embedder_id, dimension),
            )
        # Unfiltered vector search scans an in-memory copy (exact, several times faster).
        self._cache = VectorCache(dimension, cache_vectors) if cache_vectors > 0 else None
        self._data_version = self._pragma_data_version()

    @property
    def embedder_id(self) -> str:
        return self._embedder_id

    @property
    def caches_vectors(self) -> bool:
        return self._cache is not None

    async def vector_cache_summary(self, tenant_id: str | None = None) -> tuple[int, int]:
        """Vectors and bytes in the in-memory copy (the cache manager's view)."""
        cache = self._cache
        return await self._run(lambda: cache.summary(tenant_id)) if cache else (0, 0)

    async def clear_vector_cache(self, tenant_id: str | None = None) -> int:
        """Drop the in-memory copy (searches reload it from the file); vectors dropped."""
        cache = self._cache
        return await self._run(lambda: cache.clear(tenant_id)) if cache else 0

    @property
    def dimension(self) -> int:
        return self._dimension

    async def _run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await asyncio.to_thread(locked)

    async def close(self) -> None:
        await self._run(self._conn.close)

    def insert_exported(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert items exactly as another store exported them — (tenant, id, namespace,
        text, metadata JSON, embedder, created_at, updated_at, vector) — keeping their
        timestamps (``roost migrate-store``). Synchronous: call it off the event loop."""
        with self._lock, self._conn:
            for *item, vector in rows:
                rowid = _scalar(
                    self._conn.execute(
                        "INSERT INTO memory_items (tenant_id, id, namespace, text, metadata,"
                        " embedder, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                        " RETURNING rowid",
                        tuple(item),
                    )
                )
                self._conn.execute(
                    f"INSERT INTO {self._table} (rowid, tenant_id, namespace, embedding)"
                    " VALUES (?, ?, ?, ?)",
                    (rowid, item[0], item[2], check_vector(vector, self._dimension).tobytes()),
                )

    def close_now(self) -> None:
        """:meth:`close` for synchronous callers."""
        with self._lock:
            self._conn.close()

    async def upsert(self, tenant_id: str, items: Sequence[VectorItem]) -> None:
        rows = [(item, check_vector(item.vector, self._dimension)) for item in items]
        await self._run(lambda: self._upsert(tenant_id, rows))

    def _upsert(self, tenant_id: str, rows: list[tuple[VectorItem, np.ndarray]]) -> None:
        now = now_ms()
        spaces = self._spaces()
        written: list[tuple[str, int, np.ndarray]] = []
        with self._conn:
            for item, vector in rows:
                rowid = _scalar(
                    self._conn.execute(
                        "INSERT INTO memory_items"
                        " (tenant_id, id, namespace, text, metadata, embedder, created_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (tenant_id, id) DO UPDATE SET namespace = excluded.namespace,"
                        " text = excluded.text, metadata = excluded.metadata,"
                        " embedder = excluded.embedder, updated_at = excluded.updated_at"
                        " RETURNING rowid",
                        (
                            tenant_id,
                            item.id,
                            item.namespace,
                            item.text,
                            json.dumps(dict(item.metadata)),
                            self._embedder_id,
                            now,
                            now,
                        ),
                    )
                )
                for table in spaces:  # an item lives in exactly one space: the newest
                    self._conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
                self._conn.execute(
                    f"INSERT INTO {self._table} (rowid, tenant_id, namespace, embedding)"
                    " VALUES (?, ?, ?, ?)",
                    (rowid, tenant_id, item.namespace, vector.tobytes()),
                )
                written.append((item.namespace, rowid, vector))
        if self._cache is not None:  # only once committed: a rollback must not reach the cache
            self._cache.delete([rowid for _, rowid, _ in written])
            for namespace, rowid, vector in written:
                self._cache.upsert((tenant_id, namespace), rowid, vector)

    def _spaces(self) -> list[str]:
        return [row[0] for row in self._conn.execute("SELECT table_name FROM memory_spaces")]

    async def get(self, tenant_id: str, ids: Sequence[str]) -> list[StoredItem]:
        def read() -> list[StoredItem]:
            found: dict[str, StoredItem] = {}
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for row in self._conn.execute(
                    f"SELECT {_COLUMNS} FROM memory_items i WHERE i.tenant_id = ? AND i.id IN ({marks})",
                    (tenant_id, *chunk),
                ):
                    item = _item(row)
                    found[item.id] = item
            return [found[i] for i in ids if i in found]

        return await self._run(read)

    async def list_items(
        self, tenant_id: str, namespace: str, where: Where | None = None, *, limit: int = 100
    ) -> list[StoredItem]:
        sql, params = _where_sql(where)

        def read() -> list[StoredItem]:
            return [
                _item(row)
                for row in self._conn.execute(
                    f"SELECT {_COLUMNS} FROM memory_items i WHERE i.tenant_id = ?"
                    f" AND i.namespace = ?{sql} ORDER BY i.created_at, i.rowid LIMIT ?",
                    (tenant_id, namespace, *params, limit),
                )
            ]

        return await self._run(read)

    async def count(self, tenant_id: str, namespace: str, where: Where | None = None) -> int:
        sql, params = _where_sql(where)

        def read() -> int:
            return int(
                _scalar(
                    self._conn.execute(
                        f"SELECT count(*) FROM memory_items i WHERE i.tenant_id = ?"
                        f" AND i.namespace = ?{sql}",
                        (tenant_id, namespace, *params),
                    )
                )
            )

        return await self._run(read)

    async def update_metadata(self, tenant_id: str, item_id: str, patch: Mapping[str, Any]) -> bool:
        def write() -> bool:
            with self._conn:
                self._conn.execute(
                    "UPDATE memory_items SET metadata = json_patch(metadata, ?), updated_at = ?"
                    " WHERE tenant_id = ? AND id = ?",
                    (json.dumps(dict(patch)), now_ms(), tenant_id, item_id),
                )
                changed = self._conn.changes()
            return bool(changed)

        return await self._run(write)

    async def delete(self, tenant_id: str, ids: Sequence[str]) -> int:
        def write() -> int:
            rowids = [
                row[0]
                for item_id in ids
                for row in self._conn.execute(
                    "SELECT rowid FROM memory_items WHERE tenant_id = ? AND id = ?",
                    (tenant_id, item_id),
                )
            ]
            self._delete_rowids(rowids)
            return len(rowids)

        return await self._run(write)

    async def delete_where(self, tenant_id: str, namespace: str, where: Where | None = None) -> int:
        sql, params = _where_sql(where)

        def write() -> int:
            rowids = [
                row[0]
                for row in self._conn.execute(
                    f"SELECT i.rowid FROM memory_items i WHERE i.tenant_id = ? AND i.namespace = ?{sql}",
                    (tenant_id, namespace, *params),
                )
            ]
            self._delete_rowids(rowids)
            return len(rowids)

        return await self._run(write)

    def _delete_rowids(self, rowids: list[int]) -> None:
        spaces = self._spaces()
        with self._conn:
            for rowid in rowids:
                for table in spaces:
                    self._conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
                self._conn.execute("DELETE FROM memory_items WHERE rowid = ?", (rowid,))
        if self._cache is not None:
            self._cache.delete(rowids)

    async def stale(self, tenant_id: str, namespace: str, *, limit: int = 500) -> list[StoredItem]:
        def read() -> list[StoredItem]:
            return [
                _item(row)
                for row in self._conn.execute(
                    f"SELECT {_COLUMNS} FROM memory_items i WHERE i.tenant_id = ?"
                    " AND i.namespace = ? AND i.embedder != ? ORDER BY i.rowid LIMIT ?",
                    (tenant_id, namespace, self._embedder_id, limit),
                )
            ]

        return await self._run(read)

    async def search(
        self,
        tenant_id: str,
        namespace: str,
        *,
        text: str = "",
        vector: np.ndarray | None = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
        where: Where | None = None,
    ) -> list[SearchHit]:
        where_sql, where_params = _where_sql(where)
        query = None if vector is None else check_vector(vector, self._dimension)
        phrases = fts_phrases(text)
        depth = k if mode != "hybrid" else candidate_count(k)

        def read() -> list[SearchHit]:
            vector_hits: list[tuple[str, float]] = []
            keyword_hits: list[tuple[str, float]] = []
            rows: dict[str, StoredItem] = {}
            if mode != "keyword" and query is not None:
                for row in self._vector_rows(
                    tenant_id, namespace, query, depth, where_sql, where_params
                ):
                    item = _item(row[:8])
                    rows[item.id] = item
                    vector_hits.append((item.id, 1.0 - float(row[8])))
            if mode != "vector" and phrases:
                # Phrases hold \w+ words only, so quoting them cannot break FTS5 syntax.
                match = " OR ".join('"' + " ".join(words) + '"' for words in phrases)
                for row in self._conn.execute(
                    f"SELECT {_COLUMNS}, bm25(memory_fts) FROM memory_fts f"
                    " JOIN memory_items i ON i.rowid = f.rowid"
                    f" WHERE memory_fts MATCH ? AND i.tenant_id = ? AND i.namespace = ?"
                    f"{where_sql} ORDER BY bm25(memory_fts) LIMIT ?",
                    (match, tenant_id, namespace, *where_params, depth),
                ):
                    item = _item(row[:8])
                    rows.setdefault(item.id, item)
                    keyword_hits.append((item.id, -float(row[8])))  # bm25(): lower is better
            fused = fuse(vector_hits, keyword_hits, k=k)
            return [SearchHit(rows[i], s, vr, kr, sim) for i, s, vr, kr, sim in fused]

        return await self._run(read)

    def _vector_rows(
        self,
        tenant_id: str,
        namespace: str,
        query: np.ndarray,
        depth: int,
        where_sql: str,
        where_params: list[Any],
    ) -> list[Any]:
        blob = query.tobytes()
        if where_sql:
            # Exact distance over the rows that pass the filter: correct under any filter.
            return list(
                self._conn.execute(
                    f"SELECT {_COLUMNS}, vec_distance_cosine(v.embedding, ?) AS d"
                    f" FROM memory_items i JOIN {self._table} v ON v.rowid = i.rowid"
                    f" WHERE i.tenant_id = ? AND i.namespace = ?{where_sql} ORDER BY d LIMIT ?",
                    (blob, tenant_id, namespace, *where_params, depth),
                )
            )
        cached = self._cached_nearest(tenant_id, namespace, query, depth)
        if cached is not None:
            return cached
        return list(
            self._conn.execute(
                f"SELECT {_COLUMNS}, v.distance FROM ("
                f"  SELECT rowid, distance FROM {self._table} WHERE embedding MATCH ? AND k = ?"
                f"  AND tenant_id = ? AND namespace = ?"
                f") v JOIN memory_items i ON i.rowid = v.rowid ORDER BY v.distance",
                (blob, depth, tenant_id, namespace),
            )
        )

    def _pragma_data_version(self) -> int:
        return int(_scalar(self._conn.execute("PRAGMA data_version")))

    def _cached_nearest(
        self, tenant_id: str, namespace: str, query: np.ndarray, depth: int
    ) -> list[Any] | None:
        """Rows like the vec0 query's, from the in-memory copy; None when not cached."""
        if self._cache is None:
            return None
        version = self._pragma_data_version()
        if version != self._data_version:  # another connection committed: copies are stale
            self._cache.clear()
            self._data_version = version
        key = (tenant_id, namespace)
        if key not in self._cache:
            stored: list[Any] = self._conn.execute(
                f"SELECT rowid, embedding FROM {self._table} WHERE tenant_id = ? AND namespace = ?",
                key,
            ).fetchall()
            if not self._cache.load(key, [r[0] for r in stored], [r[1] for r in stored]):
                return None
        nearest = self._cache.search(key, query, depth)
        if not nearest:
            return []
        marks = ",".join("?" * len(nearest))
        by_rowid = {
            row[0]: row[1:]
            for row in self._conn.execute(
                f"SELECT i.rowid, {_COLUMNS} FROM memory_items i WHERE i.rowid IN ({marks})",
                [rowid for rowid, _ in nearest],
            )
        }
        return [(*by_rowid[rowid], distance) for rowid, distance in nearest if rowid in by_rowid]


def _scalar(cursor: apsw.Cursor) -> Any:
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("statement returned no row")
    return row[0]


def _item(row: Sequence[Any]) -> StoredItem:
    return StoredItem(
        id=row[0],
        tenant_id=row[1],
        namespace=row[2],
        text=row[3],
        metadata=json.loads(row[4]),
        embedder=row[5],
        created_at=int(row[6]),
        updated_at=int(row[7]),
    )


def _where_sql(where: Where | None) -> tuple[str, list[Any]]:
    """A filter as `` AND ...`` over ``i.metadata`` plus its parameters."""
    parts: list[str] = []
    params: list[Any] = []
    for key, op, value in check_where(where):
        ref = f"json_extract(i.metadata, '$.{key}')"  # key is a checked identifier
        if op == "null":
            parts.append(f"{ref} IS NULL")
        elif op == "eq":
            parts.append(f"{ref} = ?")
            params.append(_bind(value))
        elif op == "ne":
            if value is None:
                parts.append(f"{ref} IS NOT NULL")
            else:
                parts.append(f"({ref} IS NULL OR {ref} != ?)")
                params.append(_bind(value))
        elif op == "in":
            parts.append(f"{ref} IN ({','.join('?' * len(value))})")
            params.extend(_bind(v) for v in value)
        else:
            parts.append(
                f"(json_type(i.metadata, '$.{key}') IN ('integer', 'real') AND {ref} {op} ?)"
            )
            params.append(value)
    return "".join(f" AND {part}" for part in parts), params


def _bind(value: Any) -> Any:
    # json_extract gives JSON booleans back as 1/0.
    return int(value) if isinstance(value, bool) else value
