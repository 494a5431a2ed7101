"""An embedder that remembers: texts embedded once are never embedded again.

Vectors are kept in the relational store (``embedding_cache``), keyed by the embedder's
id and the SHA-256 of the text, so every process of a deployment shares them and they
survive restarts: re-ingesting a knowledge source whose chunks did not change, or
recalling with a query asked before, costs a lookup instead of a model call. The id is
part of the key, so a changed embedder never serves stale vectors.

Eviction: least recently used past ``max_entries`` (checked every few hundred writes, so
the bound is soft by that much; last use is recorded to the minute, so a hit is a read
and rarely a write), and optionally entries unused for ``ttl_s``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import bindparam, text

from roost.llm.embeddings import Embedder, Vectors
from roost.storage import Database, now_ms

_EVICT_EVERY = 256  # writes between checks of the size bound
_TOUCH_EVERY_MS = 60_000


@dataclass(slots=True)
class EmbeddingCacheStats:
    hits: int = 0
    misses: int = 0


class CachedEmbedder:
    """:class:`~roost.llm.embeddings.Embedder` in front of another, with the same id."""

    def __init__(
        self,
        inner: Embedder,
        database: Database,
        *,
        max_entries: int = 200_000,
        ttl_s: float | None = None,
    ) -> None:
        self.inner = inner
        self.database = database
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.stats = EmbeddingCacheStats()
        self._writes_since_check = 0

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def __getattr__(self, name: str) -> Any:
        # count_tokens, batch_size ...: whatever else callers read from the real embedder.
        return getattr(self.inner, name)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return await self.inner.embed(texts)
        digests = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        found = await self._lookup(sorted(set(digests)))
        missing = {d: t for d, t in zip(digests, texts, strict=True) if d not in found}
        # A miss is a text the model embeds; repeats within one call are hits.
        self.stats.misses += len(missing)
        self.stats.hits += len(texts) - len(missing)
        if missing:
            fresh = await self.inner.embed(list(missing.values()))
            new = dict(zip(missing, fresh, strict=True))
            await self._store(new)
            found.update(new)
        return np.ascontiguousarray(np.stack([found[d] for d in digests]), dtype=np.float32)

    async def count(self) -> tuple[int, int]:
        """Entries and bytes of vectors held (every embedder's)."""
        row = await self.database.fetch_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(vector)), 0) AS b FROM embedding_cache"
        )
        return (int(row["n"]), int(row["b"])) if row else (0, 0)

    async def clear(self) -> int:
        return await self.database.execute("DELETE FROM embedding_cache")

    async def _lookup(self, digests: list[str]) -> dict[str, np.ndarray]:
        now = now_ms()
        floor = now - int(self.ttl_s * 1000) if self.ttl_s is not None else 0
        query = text(
            "SELECT digest, vector, used_at FROM embedding_cache"
            " WHERE embedder = :e AND digest IN :d AND used_at >= :floor"
        ).bindparams(bindparam("d", expanding=True))
        # A read: no write lock for the common case (recall asks again and again).
        async with self.database.engine.connect() as conn:
            rows = (await conn.execute(query, {"e": self.id, "d": digests, "floor": floor})).all()
        # LRU needs the last use only roughly: touch rows not touched in the last minute.
        stale = [str(row[0]) for row in rows if int(row[2]) < now - _TOUCH_EVERY_MS]
        if stale:
            touch = text(
                "UPDATE embedding_cache SET used_at = :now WHERE embedder = :e AND digest IN :d"
            ).bindparams(bindparam("d", expanding=True))
            async with self.database.transaction() as conn:
                await conn.execute(touch, {"now": now, "e": self.id, "d": stale})
        return {str(row[0]): np.frombuffer(bytes(row[1]), dtype=np.float32) for row in rows}

    async def _store(self, vectors: dict[str, np.ndarray]) -> None:
        now = now_ms()
        rows = [
            {
                "e": self.id,
                "d": digest,
                "v": np.asarray(vector, dtype=np.float32).tobytes(),
                "t": now,
            }
            for digest, vector in vectors.items()
        ]
        async with self.database.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO embedding_cache (embedder, digest, vector, used_at)"
                    " VALUES (:e, :d, :v, :t) ON CONFLICT (embedder, digest)"
                    " DO UPDATE SET vector = excluded.vector, used_at = excluded.used_at"
                ),
                rows,
            )
        self._writes_since_check += len(rows)
        if self._writes_since_check >= _EVICT_EVERY:
            self._writes_since_check = 0
            await self.evict()

    async def evict(self) -> int:
        """Apply the TTL and the size bound; return how many entries went."""
        removed = 0
        if self.ttl_s is not None:
            removed += await self.database.execute(
                "DELETE FROM embedding_cache WHERE used_at < :floor",
                {"floor": now_ms() - int(self.ttl_s * 1000)},
            )
        entries, _ = await self.count()
        excess = entries - self.max_entries
        if excess > 0:
            # The oldest ``excess`` by last use: everything at or before the cut-off time.
            cutoff = await self.database.fetch_one(
                "SELECT used_at FROM embedding_cache ORDER BY used_at LIMIT 1 OFFSET :n",
                {"n": excess - 1},
            )
            if cutoff is not None:
                removed += await self.database.execute(
                    "DELETE FROM embedding_cache WHERE used_at <= :t", {"t": cutoff["used_at"]}
                )
        return removed
