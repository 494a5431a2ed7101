"""Where cached responses live: process memory, the Roost database (SQLite or
PostgreSQL) or Redis. Each stores values under exact keys with a TTL, plus optional
vectors per partition for the semantic tier."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from roost.storage import Database
from roost.storage.redis import RedisClient


@dataclass(frozen=True, slots=True)
class Neighbour:
    key: str
    value: str
    similarity: float


class CacheStore(Protocol):
    """The storage behind :class:`~roost.llm.cache.ResponseCache`."""

    async def get(self, key: str) -> str | None: ...

    async def put(
        self,
        key: str,
        value: str,
        ttl_s: float,
        *,
        tenant_id: str,
        partition: str | None = None,
        vector: Sequence[float] | None = None,
    ) -> None: ...

    async def nearest(self, partition: str, vector: Sequence[float]) -> Neighbour | None:
        """The live entry of ``partition`` whose vector is most similar (cosine) to ``vector``."""
        ...

    async def summary(self, tenant_id: str | None = None) -> tuple[int, int]:
        """Live entries and bytes of their values (of one tenant, or all)."""
        ...

    async def clear(self, tenant_id: str | None = None) -> int:
        """Drop entries (of one tenant, or all); return how many."""
        ...


def _best(
    vector: Sequence[float], candidates: list[tuple[str, str, list[float]]]
) -> Neighbour | None:
    if not candidates:
        return None
    query = np.asarray(vector, dtype=np.float32)
    matrix = np.asarray([c[2] for c in candidates], dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
    scores = matrix @ query / np.where(norms == 0, 1.0, norms)
    best = int(np.argmax(scores))
    key, value, _ = candidates[best]
    return Neighbour(key, value, float(scores[best]))


@dataclass(slots=True)
class _Entry:
    value: str
    expires_at: float
    partition: str | None
    vector: list[float] | None
    tenant_id: str = ""


class MemoryCacheStore:
    """A bounded LRU in this process; ``clock`` is injectable so TTL tests never sleep."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._partitions: dict[str, set[str]] = {}

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def put(
        self,
        key: str,
        value: str,
        ttl_s: float,
        *,
        tenant_id: str,
        partition: str | None = None,
        vector: Sequence[float] | None = None,
    ) -> None:
        self._drop(key)
        self._entries[key] = _Entry(
            value,
            self.clock() + ttl_s,
            partition,
            list(vector) if vector is not None else None,
            tenant_id,
        )
        if partition is not None and vector is not None:
            self._partitions.setdefault(partition, set()).add(key)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    async def nearest(self, partition: str, vector: Sequence[float]) -> Neighbour | None:
        now = self.clock()
        candidates: list[tuple[str, str, list[float]]] = []
        for key in list(self._partitions.get(partition, ())):
            entry = self._entries[key]
            if entry.expires_at <= now:
                self._drop(key)
            elif entry.vector is not None:
                candidates.append((key, entry.value, entry.vector))
        return _best(vector, candidates)

    async def summary(self, tenant_id: str | None = None) -> tuple[int, int]:
        now = self.clock()
        live = [
            e for e in self._entries.values()
            if e.expires_at > now and tenant_id in (None, e.tenant_id)
        ]  # fmt: skip
        return len(live), sum(len(e.value.encode()) for e in live)

    async def clear(self, tenant_id: str | None = None) -> int:
        doomed = [k for k, e in self._entries.items() if tenant_id in (None, e.tenant_id)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.partition is not None:
            members = self._partitions.get(entry.partition)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._partitions[entry.partition]


class DatabaseCacheStore:
    """Rows in ``llm_cache`` of the Roost database; survives restarts, shared by workers."""

    def __init__(self, database: Database, clock_ms: Callable[[], int] | None = None) -> None:
        self.database = database
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    async def get(self, key: str) -> str | None:
        row = await self.database.fetch_one(
            "SELECT value FROM llm_cache WHERE key = :k AND expires_at > :now",
            {"k": key, "now": self.clock_ms()},
        )
        return str(row["value"]) if row else None

    async def put(
        self,
        key: str,
        value: str,
        ttl_s: float,
        *,
        tenant_id: str,
        partition: str | None = None,
        vector: Sequence[float] | None = None,
    ) -> None:
        await self.database.execute(
            "INSERT INTO llm_cache (key, tenant_id, partition, vector, value, expires_at)"
            " VALUES (:k, :t, :p, :v, :val, :e) ON CONFLICT (key) DO UPDATE SET"
            " partition = excluded.partition, vector = excluded.vector,"
            " value = excluded.value, expires_at = excluded.expires_at",
            {
                "k": key,
                "t": tenant_id,
                "p": partition or "",
                "v": json.dumps(list(vector)) if vector is not None else None,
                "val": value,
                "e": self.clock_ms() + int(ttl_s * 1000),
            },
        )

    async def nearest(self, partition: str, vector: Sequence[float]) -> Neighbour | None:
        rows = await self.database.fetch_all(
            "SELECT key, value, vector FROM llm_cache WHERE partition = :p AND expires_at > :now"
            " AND vector IS NOT NULL",
            {"p": partition, "now": self.clock_ms()},
        )
        return _best(vector, [(r["key"], r["value"], json.loads(r["vector"])) for r in rows])

    async def summary(self, tenant_id: str | None = None) -> tuple[int, int]:
        scope = "" if tenant_id is None else " AND tenant_id = :t"
        row = await self.database.fetch_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(value)), 0) AS b FROM llm_cache"
            " WHERE expires_at > :now" + scope,
            {"now": self.clock_ms(), "t": tenant_id},
        )
        return (int(row["n"]), int(row["b"])) if row else (0, 0)

    async def clear(self, tenant_id: str | None = None) -> int:
        if tenant_id is None:
            return await self.database.execute("DELETE FROM llm_cache")
        return await self.database.execute(
            "DELETE FROM llm_cache WHERE tenant_id = :t", {"t": tenant_id}
        )

    async def purge_expired(self) -> int:
        return await self.database.execute(
            "DELETE FROM llm_cache WHERE expires_at <= :now", {"now": self.clock_ms()}
        )


class RedisCacheStore:
    """Values as Redis strings with a TTL; each semantic partition is a hash of vectors."""

    def __init__(self, redis: RedisClient, prefix: str = "roost:llm:cache:") -> None:
        self.client = redis.client
        self.prefix = prefix

    async def get(self, key: str) -> str | None:
        value = await self.client.get(self.prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    async def put(
        self,
        key: str,
        value: str,
        ttl_s: float,
        *,
        tenant_id: str,
        partition: str | None = None,
        vector: Sequence[float] | None = None,
    ) -> None:
        ttl_ms = max(1, int(ttl_s * 1000))
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + key, value, px=ttl_ms)
            if partition is not None and vector is not None:
                pkey = f"{self.prefix}p:{partition}"
                pipe.hset(pkey, key, json.dumps(list(vector)))
                pipe.pexpire(pkey, ttl_ms)
            await pipe.execute()

    async def nearest(self, partition: str, vector: Sequence[float]) -> Neighbour | None:
        pkey = f"{self.prefix}p:{partition}"
        members = await self.client.hgetall(pkey)
        if not members:
            return None
        keys = [k.decode() if isinstance(k, bytes) else k for k in members]
        values = await self.client.mget([self.prefix + k for k in keys])
        candidates: list[tuple[str, str, list[float]]] = []
        expired: list[str] = []
        for key, raw_vector, value in zip(keys, members.values(), values, strict=True):
            if value is None:
                expired.append(key)  # the value's TTL ran out: forget its vector too
                continue
            text = value.decode() if isinstance(value, bytes) else value
            candidates.append((key, text, json.loads(raw_vector)))
        if expired:
            await self.client.hdel(pkey, *expired)
        return _best(vector, candidates)

    async def summary(self, tenant_id: str | None = None) -> tuple[int, int]:
        if tenant_id is not None:
            raise TenantScopeUnsupported("the Redis response cache is not kept per tenant")
        entries = nbytes = 0
        async for key in self.client.scan_iter(match=self.prefix + "*", count=500):
            name = key.decode() if isinstance(key, bytes) else key
            if not name.startswith(self.prefix + "p:"):
                entries += 1
                nbytes += int(await self.client.strlen(key))
        return entries, nbytes

    async def clear(self, tenant_id: str | None = None) -> int:
        if tenant_id is not None:
            raise TenantScopeUnsupported("the Redis response cache is not kept per tenant")
        removed = 0
        async for key in self.client.scan_iter(match=self.prefix + "*", count=500):
            name = key.decode() if isinstance(key, bytes) else key
            deleted = int(await self.client.delete(key))
            # Partition hashes hold vectors of entries, not entries: not counted.
            removed += 0 if name.startswith(self.prefix + "p:") else deleted
        return removed


class TenantScopeUnsupported(Exception):
    """A cache that is shared by key cannot be counted or cleared for one tenant."""
