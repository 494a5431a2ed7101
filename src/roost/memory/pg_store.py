"""The scale-out vector store: PostgreSQL with pgvector (HNSW, cosine) and full-text search.

Items share one table (``memory_items``, from the memory migrations) with a generated
``tsvector``; vectors sit in one table per embedding space with an HNSW index. Filtered
vector queries use pgvector's iterative index scans, so a selective filter still returns
``k`` results instead of the few that survive one pass of the index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError

from roost.errors import StorageUnavailable
from roost.memory.schema import MEMORY_MIGRATIONS
from roost.memory.sqlite_store import space_table
from roost.memory.vector_store import (
    SearchHit,
    SearchMode,
    StoredItem,
    VectorItem,
    Where,
    candidate_count,
    check_vector,
    check_where,
    fts_tokens,
    fuse,
)
from roost.storage import Database, migrate, now_ms

_COLUMNS = (
    "i.id, i.tenant_id, i.namespace, i.text, i.metadata, i.embedder, i.created_at, i.updated_at"
)
_LOCK_KEY = 7_263_008  # serialises creation of space tables across processes


class PgVectorStore:
    """:class:`~roost.memory.vector_store.VectorStore` on PostgreSQL + pgvector."""

    def __init__(self, database: Database, *, embedder_id: str, dimension: int) -> None:
        self.database = database
        self._embedder_id = embedder_id
        self._dimension = dimension
        self._table = space_table(embedder_id, dimension)

    @classmethod
    async def open(cls, database: Database, *, embedder_id: str, dimension: int) -> PgVectorStore:
        """Migrate, then make sure pgvector and this space's table exist."""
        store = cls(database, embedder_id=embedder_id, dimension=dimension)
        await migrate(database, MEMORY_MIGRATIONS)
        try:
            async with database.transaction() as conn:
                await conn.execute(sql_text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                await conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
                await conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {store._table} ("
                    " tenant_id TEXT NOT NULL, id TEXT NOT NULL, namespace TEXT NOT NULL,"
                    f" embedding vector({dimension}) NOT NULL, PRIMARY KEY (tenant_id, id),"
                    " FOREIGN KEY (tenant_id, id) REFERENCES memory_items ON DELETE CASCADE)"
                )
                await conn.exec_driver_sql(
                    f"CREATE INDEX IF NOT EXISTS {store._table}_hnsw ON {store._table}"
                    " USING hnsw (embedding vector_cosine_ops)"
                )
                await conn.exec_driver_sql(
                    f"CREATE INDEX IF NOT EXISTS {store._table}_ns ON {store._table}"
                    " (tenant_id, namespace)"
                )
        except DBAPIError as exc:
            reason = str(exc.orig or exc).splitlines()[0]
            raise StorageUnavailable(
                "the PostgreSQL vector store needs the pgvector extension"
                f" (CREATE EXTENSION vector): {reason};"
                " set memory.vector_backend = 'sqlite' to keep vectors in an embedded file"
            ) from exc
        return store

    @property
    def embedder_id(self) -> str:
        return self._embedder_id

    @property
    def vector_table(self) -> str:
        """The table of this embedding space's vectors."""
        return self._table

    @property
    def dimension(self) -> int:
        return self._dimension

    async def close(self) -> None:
        """Nothing to release: the database belongs to the platform."""

    async def upsert(self, tenant_id: str, items: Sequence[VectorItem]) -> None:
        if not items:
            return
        now = now_ms()
        rows = [
            {
                "t": tenant_id,
                "id": item.id,
                "ns": item.namespace,
                "text": item.text,
                "m": json.dumps(dict(item.metadata)),
                "e": self._embedder_id,
                "now": now,
                "v": _vector_literal(check_vector(item.vector, self._dimension)),
            }
            for item in items
        ]
        spaces = await self._spaces()
        async with self.database.transaction() as conn:
            await conn.execute(
                sql_text(
                    "INSERT INTO memory_items"
                    " (tenant_id, id, namespace, text, metadata, embedder, created_at, updated_at)"
                    " VALUES (:t, :id, :ns, :text, CAST(:m AS jsonb), :e, :now, :now)"
                    " ON CONFLICT (tenant_id, id) DO UPDATE SET namespace = excluded.namespace,"
                    " text = excluded.text, metadata = excluded.metadata,"
                    " embedder = excluded.embedder, updated_at = excluded.updated_at"
                ),
                rows,
            )
            for table in spaces:
                if table != self._table:
                    await conn.execute(
                        sql_text(f"DELETE FROM {table} WHERE tenant_id = :t AND id = :id"), rows
                    )
            await conn.execute(
                sql_text(
                    f"INSERT INTO {self._table} (tenant_id, id, namespace, embedding)"
                    " VALUES (:t, :id, :ns, CAST(:v AS vector))"
                    " ON CONFLICT (tenant_id, id) DO UPDATE SET namespace = excluded.namespace,"
                    " embedding = excluded.embedding"
                ),
                rows,
            )

    async def _spaces(self) -> list[str]:
        rows = await self.database.fetch_all(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name LIKE 'memory_vec_%'"
        )
        return [row["table_name"] for row in rows]

    async def get(self, tenant_id: str, ids: Sequence[str]) -> list[StoredItem]:
        if not ids:
            return []
        rows = await self.database.fetch_all(
            f"SELECT {_COLUMNS} FROM memory_items i WHERE i.tenant_id = :t AND i.id = ANY(:ids)",
            {"t": tenant_id, "ids": list(ids)},
        )
        found = {row["id"]: _item(row) for row in rows}
        return [found[i] for i in ids if i in found]

    async def list_items(
        self, tenant_id: str, namespace: str, where: Where | None = None, *, limit: int = 100
    ) -> list[StoredItem]:
        where_sql, params = _where_sql(where)
        rows = await self.database.fetch_all(
            f"SELECT {_COLUMNS} FROM memory_items i WHERE i.tenant_id = :t AND i.namespace = :ns"
            f"{where_sql} ORDER BY i.created_at, i.id LIMIT :limit",
            {"t": tenant_id, "ns": namespace, "limit": limit, **params},
        )
        return [_item(row) for row in rows]

    async def count(self, tenant_id: str, namespace: str, where: Where | None = None) -> int:
        where_sql, params = _where_sql(where)
        row = await self.database.fetch_one(
            f"SELECT count(*) AS n FROM memory_items i WHERE i.tenant_id = :t"
            f" AND i.namespace = :ns{where_sql}",
            {"t": tenant_id, "ns": namespace, **params},
        )
        return int(row["n"]) if row else 0

    async def update_metadata(self, tenant_id: str, item_id: str, patch: Mapping[str, Any]) -> bool:
        changed = await self.database.execute(
            "UPDATE memory_items SET metadata = metadata || CAST(:p AS jsonb), updated_at = :now"
            " WHERE tenant_id = :t AND id = :id",
            {"p": json.dumps(dict(patch)), "now": now_ms(), "t": tenant_id, "id": item_id},
        )
        return changed > 0

    async def delete(self, tenant_id: str, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        return await self.database.execute(
            "DELETE FROM memory_items WHERE tenant_id = :t AND id = ANY(:ids)",
            {"t": tenant_id, "ids": list(ids)},
        )

    async def delete_where(self, tenant_id: str, namespace: str, where: Where | None = None) -> int:
        where_sql, params = _where_sql(where)
        return await self.database.execute(
            f"DELETE FROM memory_items i WHERE i.tenant_id = :t AND i.namespace = :ns{where_sql}",
            {"t": tenant_id, "ns": namespace, **params},
        )

    async def stale(self, tenant_id: str, namespace: str, *, limit: int = 500) -> list[StoredItem]:
        rows = await self.database.fetch_all(
            f"SELECT {_COLUMNS} FROM memory_items i WHERE i.tenant_id = :t AND i.namespace = :ns"
            " AND i.embedder != :e ORDER BY i.created_at, i.id LIMIT :limit",
            {"t": tenant_id, "ns": namespace, "e": self._embedder_id, "limit": limit},
        )
        return [_item(row) for row in rows]

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
        tokens = fts_tokens(text)
        depth = k if mode != "hybrid" else candidate_count(k)
        base = {"t": tenant_id, "ns": namespace, "depth": depth, **where_params}
        rows: dict[str, StoredItem] = {}
        vector_hits: list[tuple[str, float]] = []
        keyword_hits: list[tuple[str, float]] = []
        async with self.database.transaction() as conn:
            if mode != "keyword" and query is not None:
                # Keep scanning the index until enough rows pass the filter (pgvector >= 0.8).
                await conn.exec_driver_sql("SET LOCAL hnsw.iterative_scan = strict_order")
                await conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {max(40, depth)}")
                result = await conn.execute(
                    sql_text(
                        f"SELECT {_COLUMNS}, v.embedding <=> CAST(:q AS vector) AS distance"
                        f" FROM {self._table} v JOIN memory_items i"
                        " ON i.tenant_id = v.tenant_id AND i.id = v.id"
                        f" WHERE v.tenant_id = :t AND v.namespace = :ns{where_sql}"
                        " ORDER BY distance LIMIT :depth"
                    ),
                    {**base, "q": _vector_literal(query)},
                )
                for row in result.mappings():
                    item = _item(row)
                    rows[item.id] = item
                    vector_hits.append((item.id, 1.0 - float(row["distance"])))
            if mode != "vector" and tokens:
                # PostgreSQL's own parser makes each token a phrase (it splits "ZX-4471"
                # differently from FTS5), so documents and queries always agree.
                tsquery = " || ".join(
                    f"phraseto_tsquery('english', :k{n})" for n in range(len(tokens))
                )
                result = await conn.execute(
                    sql_text(
                        f"SELECT {_COLUMNS}, ts_rank(i.tsv, q.query) AS rank FROM memory_items i,"
                        f" (SELECT {tsquery} AS query) AS q"
                        " WHERE i.tenant_id = :t AND i.namespace = :ns AND i.tsv @@ q.query"
                        f"{where_sql} ORDER BY rank DESC, i.id LIMIT :depth"
                    ),
                    {**base, **{f"k{n}": token for n, token in enumerate(tokens)}},
                )
                for row in result.mappings():
                    item = _item(row)
                    rows.setdefault(item.id, item)
                    keyword_hits.append((item.id, float(row["rank"])))
        fused = fuse(vector_hits, keyword_hits, k=k)
        return [SearchHit(rows[i], s, vr, kr, sim) for i, s, vr, kr, sim in fused]


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def _item(row: Any) -> StoredItem:
    metadata = row["metadata"]
    return StoredItem(
        id=row["id"],
        tenant_id=row["tenant_id"],
        namespace=row["namespace"],
        text=row["text"],
        metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata),
        embedder=row["embedder"],
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
    )


def _where_sql(where: Where | None) -> tuple[str, dict[str, Any]]:
    """A filter as `` AND ...`` over ``i.metadata`` (JSONB) plus its named parameters."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    for n, (key, op, value) in enumerate(check_where(where)):
        ref = f"i.metadata -> '{key}'"  # key is a checked identifier
        name = f"w{n}"
        if op == "null":
            parts.append(f"({ref} IS NULL OR {ref} = 'null'::jsonb)")
        elif op == "eq":
            parts.append(f"{ref} = CAST(:{name} AS jsonb)")
            params[name] = json.dumps(value)
        elif op == "ne":
            if value is None:
                parts.append(f"({ref} IS NOT NULL AND {ref} != 'null'::jsonb)")
            else:
                parts.append(f"({ref} IS NULL OR {ref} != CAST(:{name} AS jsonb))")
                params[name] = json.dumps(value)
        elif op == "in":
            names = [f"{name}_{j}" for j in range(len(value))]
            parts.append(f"{ref} IN ({', '.join(f'CAST(:{m} AS jsonb)' for m in names)})")
            params.update({m: json.dumps(v) for m, v in zip(names, value, strict=True)})
        else:
            parts.append(
                f"(CASE WHEN jsonb_typeof({ref}) = 'number'"
                f" THEN ({ref})::text::double precision END) {op} :{name}"
            )
            params[name] = float(value)
    return "".join(f" AND {part}" for part in parts), params
