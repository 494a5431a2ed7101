"""Moving every stored vector item between the embedded SQLite store and pgvector, as is:
ids, text, metadata, embedder, timestamps and the vectors themselves (nothing is
re-embedded). ``roost migrate-store`` uses it; each side writes its own schema, so the
moved items are searchable exactly as the originals were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np
import sqlite_vec
from sqlalchemy import text

from roost.memory.pg_store import PgVectorStore
from roost.memory.sqlite_store import SqliteVectorStore
from roost.storage import Database

BATCH = 500


@dataclass(frozen=True, slots=True)
class VectorRow:
    tenant_id: str
    id: str
    namespace: str
    text: str
    metadata: str  # JSON
    embedder: str
    created_at: int
    updated_at: int
    vector: np.ndarray  # float32 [D]


def read_sqlite(path: Path) -> Iterator[VectorRow]:
    """Every item of an embedded store, with its vector, in rowid order."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        spaces = list(conn.execute("SELECT table_name, embedder, dimension FROM memory_spaces"))
        for table, _embedder, _dimension in spaces:
            rows = conn.execute(
                "SELECT i.tenant_id, i.id, i.namespace, i.text, i.metadata, i.embedder,"
                f" i.created_at, i.updated_at, v.embedding FROM memory_items i JOIN {table} v"
                " ON v.rowid = i.rowid ORDER BY i.rowid"
            )
            for t, i, ns, body, meta, embedder, created, updated, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                yield VectorRow(t, i, ns, body, meta, embedder, created, updated, vector)
    finally:
        conn.close()


def count_sqlite(path: Path) -> int:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        made = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'memory_items'").fetchone()
        if made is None:
            return 0
        return int(next(iter(conn.execute("SELECT COUNT(*) FROM memory_items")))[0])
    finally:
        conn.close()


async def write_postgres(database: Database, rows: list[VectorRow]) -> None:
    """Insert rows into pgvector tables (made on first use for each embedding space)."""
    by_space: dict[tuple[str, int], list[VectorRow]] = {}
    for row in rows:
        by_space.setdefault((row.embedder, row.vector.shape[0]), []).append(row)
    for (embedder, dimension), group in by_space.items():
        store = await PgVectorStore.open(database, embedder_id=embedder, dimension=dimension)
        params = [
            {"t": r.tenant_id, "id": r.id, "ns": r.namespace, "text": r.text, "m": r.metadata,
             "e": r.embedder, "c": r.created_at, "u": r.updated_at,
             "v": "[" + ",".join(f"{float(x):.9g}" for x in r.vector) + "]"}
            for r in group
        ]  # fmt: skip
        async with database.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO memory_items (tenant_id, id, namespace, text, metadata, embedder,"
                    " created_at, updated_at) VALUES (:t, :id, :ns, :text, CAST(:m AS jsonb), :e,"
                    " :c, :u)"
                ),
                params,
            )
            await conn.execute(
                text(
                    f"INSERT INTO {store.vector_table} (tenant_id, id, namespace, embedding)"
                    " VALUES (:t, :id, :ns, CAST(:v AS vector))"
                ),
                params,
            )


async def read_postgres(database: Database) -> list[VectorRow]:
    """Every item of a pgvector store with its vector."""
    spaces = await database.fetch_all(
        "SELECT table_name AS t FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_name LIKE 'memory_vec_%'"
    )
    found: list[VectorRow] = []
    for space in spaces:
        rows = await database.fetch_all(
            "SELECT i.tenant_id, i.id, i.namespace, i.text, CAST(i.metadata AS TEXT) AS metadata,"
            " i.embedder, i.created_at, i.updated_at, CAST(v.embedding AS TEXT) AS embedding"
            f" FROM memory_items i JOIN {space['t']} v"
            " ON v.tenant_id = i.tenant_id AND v.id = i.id ORDER BY i.created_at, i.id"
        )
        for r in rows:
            vector = np.asarray(json.loads(r["embedding"]), dtype=np.float32)
            found.append(
                VectorRow(
                    r["tenant_id"],
                    r["id"],
                    r["namespace"],
                    r["text"],
                    r["metadata"],
                    r["embedder"],
                    int(r["created_at"]),
                    int(r["updated_at"]),
                    vector,
                )
            )
    return found


def write_sqlite(path: Path, rows: list[VectorRow]) -> None:
    """Insert rows into an embedded store file (created, with each space, as needed)."""
    by_space: dict[tuple[str, int], list[VectorRow]] = {}
    for row in rows:
        by_space.setdefault((row.embedder, row.vector.shape[0]), []).append(row)
    for (embedder, dimension), group in by_space.items():
        store = SqliteVectorStore(path, embedder_id=embedder, dimension=dimension, cache_vectors=0)
        try:
            store.insert_exported(
                [(r.tenant_id, r.id, r.namespace, r.text, r.metadata, r.embedder,
                  r.created_at, r.updated_at, r.vector) for r in group]
            )  # fmt: skip
        finally:
            store.close_now()
