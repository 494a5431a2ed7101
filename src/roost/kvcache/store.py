"""AgentCacheStore: every session's KV cache in one of three tiers, kept across turns and restarts.

- hot: the session pins blocks of the engine's pool. They are also in the pool's prefix cache,
  so admission finds them by hash like any shared prefix; pinning only keeps the pool's LRU
  from evicting them.
- warm: K/V copied out of the pool into host memory, quantized, under ``warm_bytes``.
- cold: one file per session under ``<home>/kv/<model digest>/`` (:class:`ColdStore`),
  under ``cold_bytes``; it is what survives a restart.

A returning request is served from whichever tier holds its session: a warm or cold cache
is written back into pool blocks before admission (promotion), then only the tokens after
the longest common prefix are prefilled. The tokens of a cache are always compared with
the request's, so an edited history reuses K/V only up to the first changed token.

Threads: pool, hot and warm state change only on the engine's worker thread. Disk work runs
on one I/O thread (so saves of a session stay ordered) and never blocks the worker or the
event loop; a request whose session is on disk waits for its load, not the engine.
"""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from roost.engine.session_cache import (
    CacheIdentity,
    CachePool,
    OnWorker,
    SessionCacheInfo,
    Tier,
    prefix_hashes,
    salt_for,
)
from roost.kvcache.cold_store import CacheRejected, ColdEntry, ColdStore
from roost.kvcache.metrics import SessionCacheMetrics
from roost.kvcache.pool_io import common_prefix_length, read_blocks, write_blocks
from roost.kvcache.quantize import QuantizedKV, Scheme, dequantize, quantize
from roost.observe.logging import get_logger

log = get_logger("roost.kvcache")


@dataclass(slots=True)
class SessionCache:
    """What the store knows of one session; ``token_ids`` are the tokens its K/V covers."""

    identity: CacheIdentity
    salt: bytes
    tier: Tier
    token_ids: list[int] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)  # hot only: pinned pool blocks
    warm: QuantizedKV | None = None  # warm only
    nbytes: int = 0  # warm and cold: stored size
    last_used_ms: int = 0
    loading: Future[None] | None = None  # a cold load in flight
    cold_tokens: int = 0  # cold only: token count read from the file's header
    from_disk: bool = False  # warm because a request just loaded it (counts as a cold hit)

    @property
    def num_tokens(self) -> int:
        return self.cold_tokens if self.tier == "cold" else len(self.token_ids)


@dataclass(frozen=True, slots=True)
class Budgets:
    hot_blocks: int
    warm_bytes: int
    cold_bytes: int


class AgentCacheStore:
    """Per-session KV caches of one engine (one model): a
    :class:`roost.engine.session_cache.SessionCacheStore`."""

    def __init__(
        self,
        pool: CachePool,
        kv_cache: torch.Tensor,
        cold: ColdStore,
        *,
        budgets: Budgets,
        scheme: Scheme,
        metrics: SessionCacheMetrics,
    ) -> None:
        self.pool = pool
        self.kv_cache = kv_cache
        self.block_size = pool.block_size
        self.cold = cold
        self.budgets = budgets
        self.scheme = scheme
        self.metrics = metrics
        self.bytes_per_token = (
            kv_cache.shape[0] * 2 * kv_cache.shape[3] * kv_cache.shape[4] * kv_cache.element_size()
        )
        self._entries: dict[CacheIdentity, SessionCache] = {}
        # The same entries by tier: budget checks and LRU demotion, which run on the worker
        # after every session request, look at hot or warm ones only, never at every file.
        self._tiers: dict[Tier, dict[CacheIdentity, SessionCache]] = {
            "hot": {},
            "warm": {},
            "cold": {},
        }
        self._lock = threading.Lock()  # guards the two maps against readers on other threads
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roost-kv-io")
        self._pending_saves: set[Future[None]] = set()
        for info in cold.list():
            if info.scheme != scheme:
                # Written under another quantization setting: never loaded, but kept for
                # when the setting returns (LRU eviction under cold_bytes still counts it).
                continue
            self._put(
                SessionCache(
                    info.identity,
                    salt_for(info.identity.tenant_id),
                    "cold",
                    nbytes=info.nbytes,
                    last_used_ms=info.last_used_ms,
                    cold_tokens=info.num_tokens,
                )
            )
        for tier in self._tiers:  # read when scraped, not kept up to date on every request
            metrics.bytes.labels(tier=tier).set_function(functools.partial(self._bytes_in, tier))

    # -- any thread --------------------------------------------------------------------------

    def ensure_loaded(self, identity: CacheIdentity, on_worker: OnWorker) -> Future[None] | None:
        """Start reading a cold session from disk; None when nothing has to be read.

        The returned future completes (never with an error) once the request may be queued;
        ``on_worker`` runs the hand-over of the loaded K/V on the engine's worker thread.
        """
        with self._lock:
            entry = self._entries.get(identity)
            if entry is None or entry.tier != "cold":
                return None
            if entry.loading is not None:
                return entry.loading
            done: Future[None] = Future()
            entry.loading = done

        def load() -> None:
            started = time.perf_counter()
            loaded: ColdEntry | None = None
            try:
                loaded = self.cold.load(identity)
            except CacheRejected as exc:
                log.warning("session cache not loaded", reason=str(exc))
                self.metrics.rejected.labels(reason=exc.reason).inc()
            except Exception as exc:  # a disk error must not strand the request
                log.error("session cache load failed", error=f"{type(exc).__name__}: {exc}")
            self.metrics.load_seconds.observe(time.perf_counter() - started)
            if loaded is not None and loaded.kv.scheme != self.scheme:
                log.warning("session cache of another quantization not loaded")
                self.metrics.rejected.labels(reason="quantization_mismatch").inc()
                loaded = None

            def hand_over() -> None:
                self._adopt_loaded(identity, loaded)
                done.set_result(None)

            on_worker(hand_over)

        self._io.submit(load)
        return done

    def __len__(self) -> int:
        return len(self._entries)

    def describe(self) -> list[SessionCacheInfo]:
        with self._lock:
            entries = list(self._entries.values())
        return [
            SessionCacheInfo(
                self.cold.file_id(e.identity),
                e.identity.tenant_id,
                e.identity.session_id,
                e.tier,
                e.num_tokens,
                len(e.blocks) * self.block_size * self.bytes_per_token
                if e.tier == "hot"
                else e.nbytes,
                e.last_used_ms,
            )
            for e in entries
        ]

    def find(self, cache_id: str) -> CacheIdentity | None:
        """The session whose opaque id (as listed) is ``cache_id``."""
        with self._lock:
            identities = list(self._entries)
        return next((i for i in identities if self.cold.file_id(i) == cache_id), None)

    def record_prompt(self, prompt_tokens: int, cached_tokens: int) -> None:
        self.metrics.prompt_tokens.labels(source="reused").inc(cached_tokens)
        self.metrics.prompt_tokens.labels(source="prefilled").inc(prompt_tokens - cached_tokens)

    def flushed(self) -> Future[None]:
        """Resolves once every save queued so far is on disk (the I/O thread runs in order)."""
        return self._io.submit(lambda: None)

    def wait_for_disk(self) -> None:
        """Block until every save started so far is on disk (tests, shutdown)."""
        while True:
            with self._lock:
                pending = list(self._pending_saves)
            if not pending:
                return
            for future in pending:
                future.result()

    # -- worker thread -----------------------------------------------------------------------

    def promote(self, identity: CacheIdentity, token_ids: list[int]) -> None:
        """Before admission: make the session's K/V for ``token_ids`` findable in the pool."""
        entry = self._entries.get(identity)
        if entry is None or entry.tier == "cold":  # unknown, or its file failed to load
            self.metrics.lookups.labels(tier="miss").inc()
            return
        entry.last_used_ms = _now_ms()
        if entry.tier == "hot":
            self.metrics.lookups.labels(tier="hot").inc()
            return
        self.metrics.lookups.labels(tier="cold" if entry.from_disk else "warm").inc()
        entry.from_disk = False
        self._promote_warm(entry, token_ids)

    def remember(
        self, identity: CacheIdentity, salt: bytes, hashes: list[bytes], token_ids: list[int]
    ) -> None:
        """After a request: the session now covers ``token_ids`` (whole blocks, whose K/V sit
        in the pool, identified by their chained ``hashes``).

        Their canonical cached copies are pinned, replacing what the session held before
        (an edited history drops the old branch here).
        """
        blocks: list[int] = []
        for block_hash in hashes:
            block = self.pool.take_cached(block_hash)
            if block is None:
                break  # not registered (prefix caching off) or evicted already
            blocks.append(block)
        entry = SessionCache(identity, salt, "hot", token_ids[: len(blocks) * self.block_size])
        entry.blocks = blocks
        entry.last_used_ms = _now_ms()
        with self._lock:
            old = self._put(entry)
        if old is not None and old.tier == "hot":
            self.pool.free_all(old.blocks)
        self.enforce_budgets()

    def enforce_budgets(self) -> None:
        """Demote least recently used sessions until every tier is within its budget."""
        while self._hot_blocks() > self.budgets.hot_blocks and self._demote_lru("hot"):
            pass
        while self._warm_bytes() > self.budgets.warm_bytes and self._demote_lru("warm"):
            pass

    def relieve_pool(self, blocks_needed: int) -> None:
        """Give pinned blocks back to the pool (LRU sessions first) until ``blocks_needed`` fit."""
        if self.pool.can_allocate(blocks_needed):
            return  # every step asks: the common answer must cost nothing
        while not self.pool.can_allocate(blocks_needed) and self._demote_lru("hot"):
            pass
        self.enforce_budgets()

    def offload_all(self) -> None:
        """Write every hot and warm session to disk (shutdown, model swap, admin offload)."""
        for tier in ("hot", "warm"):
            while self._demote_lru(tier, to_disk=True):
                pass

    def delete(self, identity: CacheIdentity) -> Future[bool]:
        """Forget the session in every tier; the future tells whether anything existed."""
        with self._lock:
            entry = self._drop(identity)
        if entry is not None and entry.tier == "hot":
            self.pool.free_all(entry.blocks)
        return self._io.submit(lambda: self.cold.delete(identity) or entry is not None)

    def close(self) -> None:
        """Flush everything to disk and stop the I/O thread (after the worker has stopped)."""
        self.offload_all()
        self._io.shutdown(wait=True)

    # -- internals ---------------------------------------------------------------------------

    def _promote_warm(self, entry: SessionCache, token_ids: list[int]) -> None:
        assert entry.warm is not None
        usable = min(common_prefix_length(entry.token_ids, token_ids), len(token_ids) - 1)
        num_blocks = usable // self.block_size
        hashes = prefix_hashes(token_ids, self.block_size, num_blocks, entry.salt)
        blocks: list[int] = []
        missing: list[tuple[int, int]] = []  # (index in session, fresh pool block)
        for index, block_hash in enumerate(hashes):
            block = self.pool.take_cached(block_hash)  # a shared prefix may be there already
            if block is None:
                if not self.pool.can_allocate(1):
                    break
                block = self.pool.allocate()
                missing.append((index, block))
            blocks.append(block)
        if missing:
            kv = dequantize(entry.warm, self.kv_cache.dtype)
            size = self.block_size
            rows = torch.cat([torch.arange(i * size, (i + 1) * size) for i, _ in missing])
            write_blocks(self.kv_cache, [b for _, b in missing], size, kv.index_select(1, rows))
            for index, block in missing:
                self.pool.register(block, hashes[index])
        with self._lock:
            self._set_tier(entry, "hot")
            entry.blocks = blocks
            entry.token_ids = token_ids[: len(blocks) * self.block_size]
            entry.warm = None
            entry.nbytes = 0
        self.metrics.tokens_restored.inc(len(missing) * self.block_size)
        self.enforce_budgets()

    def _adopt_loaded(self, identity: CacheIdentity, loaded: ColdEntry | None) -> None:
        with self._lock:
            entry = self._entries.get(identity)
            if entry is None or entry.tier != "cold":
                return  # replaced or deleted meanwhile
            entry.loading = None
            if loaded is None:
                self._drop(identity)
                self.metrics.lookups.labels(tier="miss").inc()
                return
            self._set_tier(entry, "warm")
            entry.token_ids = loaded.token_ids
            entry.warm = loaded.kv
            entry.nbytes = loaded.kv.nbytes
            entry.from_disk = True
        self.enforce_budgets()

    def _demote_lru(self, tier: Tier, *, to_disk: bool = False) -> bool:
        with self._lock:
            candidates = list(self._tiers[tier].values())
        if not candidates:
            return False
        entry = min(candidates, key=lambda e: e.last_used_ms)
        if tier == "hot":
            self._demote_hot(entry, to_disk=to_disk or self.budgets.warm_bytes == 0)
        else:
            self._demote_warm(entry)
        return True

    def _demote_hot(self, entry: SessionCache, *, to_disk: bool) -> None:
        kv = read_blocks(self.kv_cache, entry.blocks, self.block_size)
        self.pool.free_all(entry.blocks)  # they stay in the prefix cache until evicted
        warm = quantize(kv, self.scheme)
        with self._lock:
            self._set_tier(entry, "warm")
            entry.blocks = []
            entry.warm = warm
            entry.nbytes = warm.nbytes
        if to_disk:
            self._demote_warm(entry)

    def _demote_warm(self, entry: SessionCache) -> None:
        assert entry.warm is not None
        record = ColdEntry(
            identity=entry.identity,
            token_ids=list(entry.token_ids),
            kv=entry.warm,
            model_digest=self.cold.model_digest,
            tokenizer_digest=self.cold.tokenizer_digest,
            created_ms=_now_ms(),
            last_used_ms=entry.last_used_ms,
        )
        with self._lock:
            self._set_tier(entry, "cold")
            entry.warm = None
        future = self._io.submit(self._save, record)
        with self._lock:
            self._pending_saves.add(future)
        future.add_done_callback(self._saved)

    def _save(self, record: ColdEntry) -> None:
        started = time.perf_counter()
        try:
            written = self.cold.save(record)
        except OSError as exc:
            log.error("session cache not saved", error=str(exc))
            with self._lock:
                lost = self._entries.get(record.identity)
                if lost is not None and lost.tier == "cold" and lost.loading is None:
                    self._drop(record.identity)
            return
        self.metrics.save_seconds.observe(time.perf_counter() - started)
        with self._lock:
            entry = self._entries.get(record.identity)
            if entry is not None and entry.tier == "cold":
                entry.nbytes = written
                entry.cold_tokens = len(record.token_ids)
        for identity in self.cold.evict_to(self.budgets.cold_bytes):
            with self._lock:
                evicted = self._entries.get(identity)
                if evicted is not None and evicted.tier == "cold" and evicted.loading is None:
                    self._drop(identity)

    def _saved(self, future: Future[None]) -> None:
        with self._lock:
            self._pending_saves.discard(future)

    def _hot_blocks(self) -> int:
        with self._lock:
            return sum(len(e.blocks) for e in self._tiers["hot"].values())

    def _warm_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._tiers["warm"].values())

    def _bytes_in(self, tier: Tier) -> int:
        if tier != "hot":
            with self._lock:
                return sum(e.nbytes for e in self._tiers[tier].values())
        return self._hot_blocks() * self.block_size * self.bytes_per_token

    # The three below keep _entries and _tiers in step; callers hold the lock.

    def _put(self, entry: SessionCache) -> SessionCache | None:
        """Add or replace the entry of its identity; returns the one it replaced."""
        old = self._drop(entry.identity)
        self._entries[entry.identity] = entry
        self._tiers[entry.tier][entry.identity] = entry
        return old

    def _drop(self, identity: CacheIdentity) -> SessionCache | None:
        entry = self._entries.pop(identity, None)
        if entry is not None:
            del self._tiers[entry.tier][identity]
        return entry

    def _set_tier(self, entry: SessionCache, tier: Tier) -> None:
        if self._entries.get(entry.identity) is entry:  # not replaced or dropped meanwhile
            del self._tiers[entry.tier][entry.identity]
            self._tiers[tier][entry.identity] = entry
        entry.tier = tier


def _now_ms() -> int:
    return int(time.time() * 1000)
