"""The cache kinds of :mod:`roost.platform.caches`, each an adapter over the cache it
reports on. Kinds that live in a server's memory take the live object; the on-disk and
in-database ones also work from storage alone (the CLI without a server)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from roost.config import Settings
from roost.platform.caches import CacheKind, CacheManager, CacheReport

_GB = 2**30
_NOT_PER_TENANT = "not kept per tenant: counted and cleared whole"


class SessionKvCaches:
    """Per-session KV caches in a running engine: hot (pinned pool blocks), warm (RAM),
    cold (files); each tier LRU under its budget."""

    name = "kv"

    def __init__(self, engine: Any, settings: Settings) -> None:
        self.engine = engine
        self.policy = _kv_policy(settings)

    async def report(self, tenant_id: str | None) -> CacheReport:
        rows = [r for r in self.engine.session_caches() if tenant_id in (None, r.tenant_id)]
        tiers = {tier: {"entries": 0, "bytes": 0} for tier in ("hot", "warm", "cold")}
        for row in rows:
            tiers[row.tier]["entries"] += 1
            tiers[row.tier]["bytes"] += row.nbytes
        return CacheReport(
            self.name, len(rows), sum(r.nbytes for r in rows), "process+disk", self.policy,
            {"tiers": tiers},
        )  # fmt: skip

    async def clear(self, tenant_id: str | None) -> CacheReport:
        rows = [r for r in self.engine.session_caches() if tenant_id in (None, r.tenant_id)]
        dropped = 0
        for row in rows:
            dropped += bool(await asyncio.wrap_future(self.engine.delete_session_cache(row.id)))
        return CacheReport(self.name, dropped, sum(r.nbytes for r in rows), "process+disk")


class ColdKvFiles:
    """The KV cold tier on disk, without a server: every model's directory under the KV
    root, tenants read from the files' headers."""

    name = "kv"

    def __init__(self, settings: Settings) -> None:
        self.root = settings.engine.session_cache.directory or settings.home / "kv"
        self.policy = _kv_policy(settings)

    def _files(self, tenant_id: str | None) -> list[Any]:
        from roost.kvcache.cold_store import ColdStore

        found = []
        for directory in sorted(p for p in self.root.glob("*") if p.is_dir()):
            # Listing reads headers only; the digests are checked on load, not here.
            store = ColdStore(directory, model_digest=directory.name, tokenizer_digest="")
            found += [f for f in store.list() if tenant_id in (None, f.identity.tenant_id)]
        return found

    def _delete(self, tenant_id: str | None) -> list[Any]:
        files = self._files(tenant_id)
        for info in files:
            Path(info.path).unlink(missing_ok=True)
        return files

    async def report(self, tenant_id: str | None) -> CacheReport:
        files = await asyncio.to_thread(self._files, tenant_id)
        return CacheReport(
            self.name, len(files), sum(f.nbytes for f in files), "disk", self.policy,
            {"tiers": {"cold": {"entries": len(files), "bytes": sum(f.nbytes for f in files)}}},
            "hot and warm tiers live in a running server",
        )  # fmt: skip

    async def clear(self, tenant_id: str | None) -> CacheReport:
        files = await asyncio.to_thread(self._delete, tenant_id)
        return CacheReport(self.name, len(files), sum(f.nbytes for f in files), "disk")


class PromptPrefixCache:
    """The engine's shared prefix cache: KV blocks of common prompt prefixes, salted per
    tenant, evicted LRU when the pool needs blocks."""

    name = "prompt"

    def __init__(self, engine: Any, settings: Settings) -> None:
        self.engine = engine
        # The pool is sized at start (from engine.kv_cache_gb, or a share of the memory).
        pool_bytes = int(engine.memory.pool_bytes)
        self.block_bytes = pool_bytes // max(engine.pool.num_blocks, 1)
        state = "on" if settings.engine.enable_prefix_cache else "off"
        self.policy = f"LRU within the KV pool ({pool_bytes / _GB:.2f} GB), {state}"

    async def report(self, tenant_id: str | None) -> CacheReport:
        pool = self.engine.pool
        queries, hits = pool.num_prefix_queries, pool.num_prefix_hits
        return CacheReport(
            self.name, pool.num_cached_blocks, pool.num_cached_blocks * self.block_bytes,
            "process", self.policy,
            {"blocks": pool.num_cached_blocks, "hit_rate": round(hits / queries, 4) if queries else 0.0},
            _NOT_PER_TENANT if tenant_id else "",
        )  # fmt: skip

    async def clear(self, tenant_id: str | None) -> CacheReport:
        if tenant_id is not None:
            return CacheReport(self.name, note=_NOT_PER_TENANT + "; not cleared for one tenant")
        dropped = await asyncio.wrap_future(self.engine.clear_prefix_cache())
        return CacheReport(self.name, dropped, where="process")


class ResponseCacheKind:
    """The LLM response cache (exact and semantic), in memory, the database or Redis."""

    name = "response"

    def __init__(self, store: Any, settings: Settings, where: str, stats: Any = None) -> None:
        self.store = store
        self.where = where
        self.stats = stats
        cache = settings.llm.cache
        self.policy = f"TTL {cache.ttl_s:g} s" + (
            f", LRU past {cache.max_entries} entries" if where == "process" else ""
        )

    async def report(self, tenant_id: str | None) -> CacheReport:
        from roost.llm.cache.stores import TenantScopeUnsupported

        detail: dict[str, Any] = {}
        if self.stats is not None:
            detail["hit_rate"] = round(self.stats.hit_rate, 4)
        try:
            entries, nbytes = await self.store.summary(tenant_id)
        except TenantScopeUnsupported as exc:
            return CacheReport(self.name, where=self.where, policy=self.policy, note=str(exc))
        return CacheReport(self.name, entries, nbytes, self.where, self.policy, detail)

    async def clear(self, tenant_id: str | None) -> CacheReport:
        from roost.llm.cache.stores import TenantScopeUnsupported

        try:
            return CacheReport(self.name, await self.store.clear(tenant_id), where=self.where)
        except TenantScopeUnsupported as exc:
            return CacheReport(self.name, where=self.where, note=f"{exc}; not cleared")


class EmbeddingCacheKind:
    """Vectors of texts already embedded, in the relational store (shared by processes)."""

    name = "embeddings"

    def __init__(self, database: Any, settings: Settings, stats: Any = None) -> None:
        self.database = database
        self.stats = stats
        cfg = settings.cache.embeddings
        self.policy = f"LRU past {cfg.max_entries} entries" + (
            f", TTL {cfg.ttl_s:g} s" if cfg.ttl_s else ""
        ) + ("" if cfg.enabled else " (off)")  # fmt: skip

    async def report(self, tenant_id: str | None) -> CacheReport:
        row = await self.database.fetch_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(vector)), 0) AS b FROM embedding_cache"
        )
        detail = {}
        if self.stats is not None:
            total = self.stats.hits + self.stats.misses
            detail = {"hits": self.stats.hits, "misses": self.stats.misses,
                      "hit_rate": round(self.stats.hits / total, 4) if total else 0.0}  # fmt: skip
        return CacheReport(
            self.name, int(row["n"]) if row else 0, int(row["b"]) if row else 0, "database",
            self.policy, detail, _NOT_PER_TENANT if tenant_id else "",
        )  # fmt: skip

    async def clear(self, tenant_id: str | None) -> CacheReport:
        if tenant_id is not None:
            return CacheReport(self.name, note=_NOT_PER_TENANT + "; not cleared for one tenant")
        dropped = await self.database.execute("DELETE FROM embedding_cache")
        return CacheReport(self.name, dropped, where="database")


class VectorSearchCache:
    """The in-memory copy of stored vectors that exact search scans (SQLite store)."""

    name = "vectors"

    def __init__(self, store: Any, settings: Settings) -> None:
        self.store = store
        self.policy = f"LRU by namespace past {settings.cache.vector_cache_vectors} vectors"

    async def report(self, tenant_id: str | None) -> CacheReport:
        entries, nbytes = await self.store.vector_cache_summary(tenant_id)
        return CacheReport(self.name, entries, nbytes, "process", self.policy)

    async def clear(self, tenant_id: str | None) -> CacheReport:
        return CacheReport(
            self.name, await self.store.clear_vector_cache(tenant_id), where="process"
        )


class Unavailable:
    """A kind that lives only in a running server's memory, seen from outside it."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    async def report(self, tenant_id: str | None) -> CacheReport:
        return CacheReport(self.name, note=self.why)

    async def clear(self, tenant_id: str | None) -> CacheReport:
        return CacheReport(self.name, note=self.why + "; nothing cleared")


def _kv_policy(settings: Settings) -> str:
    cfg = settings.engine.session_cache
    warm = (
        f"{cfg.warm_gb:g} GB"
        if cfg.warm_gb is not None
        else f"{cfg.warm_fraction:g} of the memory left after the pool"
    )
    return (
        f"LRU per tier: hot {cfg.hot_fraction:g} of the pool, warm {warm},"
        f" cold {cfg.cold_gb:g} GB ({cfg.quantization})"
    )


def kernel_caches(kernel: Any) -> CacheManager:
    """Every cache of this process's kernel (the server's view)."""
    settings: Settings = kernel.settings
    engine = kernel.inference.engine
    kinds: list[CacheKind] = []
    if engine is not None and getattr(engine, "sessions", None) is not None:
        kinds.append(SessionKvCaches(engine, settings))
    else:
        kinds.append(ColdKvFiles(settings))
    if engine is not None:
        kinds.append(PromptPrefixCache(engine, settings))
    else:
        kinds.append(Unavailable("prompt", "the local engine is not loaded in this process"))
    cache = kernel.llm.cache
    if cache is None:
        kinds.append(Unavailable("response", "the response cache is off (llm.cache.enabled)"))
    else:
        kinds.append(ResponseCacheKind(cache.store, settings, _where(settings), cache.stats))
    memory = kernel.memory
    stats = getattr(memory.embedder, "stats", None) if memory is not None else None
    kinds.append(EmbeddingCacheKind(kernel.platform.database, settings, stats))
    store = memory.store if memory is not None else None
    if store is not None and getattr(store, "caches_vectors", False):
        kinds.append(VectorSearchCache(store, settings))
    else:
        kinds.append(Unavailable("vectors", "vector search here runs in PostgreSQL (pgvector)"))
    return CacheManager(kinds)


def stored_caches(settings: Settings, platform: Any) -> CacheManager:
    """The caches that outlive a process, from storage alone (no server running)."""
    from roost.llm.cache.stores import DatabaseCacheStore, RedisCacheStore

    in_server = "lives in a running server's memory (start it, or use --url)"
    kinds: list[CacheKind] = [ColdKvFiles(settings), Unavailable("prompt", in_server)]
    where = _where(settings)
    if not settings.llm.cache.enabled:
        kinds.append(Unavailable("response", "the response cache is off (llm.cache.enabled)"))
    elif where == "database":
        kinds.append(ResponseCacheKind(DatabaseCacheStore(platform.database), settings, where))
    elif where == "redis" and platform.redis is not None:
        kinds.append(ResponseCacheKind(RedisCacheStore(platform.redis), settings, where))
    else:
        kinds.append(Unavailable("response", in_server))
    kinds.append(EmbeddingCacheKind(platform.database, settings))
    kinds.append(Unavailable("vectors", in_server))
    return CacheManager(kinds)


def _where(settings: Settings) -> str:
    return {"memory": "process", "database": "database", "redis": "redis"}[settings.llm.cache.store]
