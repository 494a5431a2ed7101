"""The seam between the engine and a per-session KV cache store (e.g. ``roost.kvcache``).

The engine knows sessions only through :class:`SessionCacheStore`: it restores a session's
K/V before admission, hands over the blocks a finished request computed, and asks for
pinned blocks back when the pool runs short. Where the caches live between requests
(memory, disk, quantized or not) is the store's business. Whoever builds an engine passes a
:data:`SessionStoreFactory`; the engine calls it once its pool and KV tensor exist. Without
one the engine has no session caches and ``session_id`` only names the request.

The pool view and hash helpers below are all a store may use of the engine's internals:
a store pins and registers blocks exactly the way admission finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from roost.engine.block_pool import BlockHash, prefix_hashes, salt_for

if TYPE_CHECKING:
    import torch
    from prometheus_client import CollectorRegistry

    from roost.engine.engine_config import EngineConfig

__all__ = [
    "BlockHash",
    "CacheIdentity",
    "CachePool",
    "OnWorker",
    "SessionCacheHost",
    "SessionCacheInfo",
    "SessionCacheStore",
    "SessionStoreFactory",
    "Tier",
    "prefix_hashes",
    "salt_for",
]

Tier = Literal["hot", "warm", "cold"]
OnWorker = Callable[[Callable[[], None]], None]  # runs work on the engine's worker thread


@dataclass(frozen=True, slots=True)
class CacheIdentity:
    """Whose cache: a session of one tenant (sessions of two tenants never share K/V)."""

    tenant_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionCacheInfo:
    """One row of the admin listing."""

    id: str
    tenant_id: str
    session_id: str
    tier: Tier
    num_tokens: int
    nbytes: int
    last_used_ms: int


class CachePool(Protocol):
    """The block pool as a session store sees it (the engine's ``BlockPool``)."""

    @property
    def block_size(self) -> int: ...
    @property
    def num_blocks(self) -> int: ...
    def can_allocate(self, num_blocks: int) -> bool: ...
    def allocate(self) -> int: ...
    def free_all(self, blocks: Sequence[int]) -> None: ...
    def take_cached(self, block_hash: BlockHash) -> int | None: ...
    def register(self, block: int, block_hash: BlockHash) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionCacheHost:
    """What an engine gives the session store it opens: its pool, KV tensor and model."""

    config: EngineConfig
    pool: CachePool
    kv_cache: torch.Tensor  # [layers, slots, 2, kv heads, head dim], slots = blocks * size
    model_digest: str
    tokenizer_digest: str
    metrics_registry: CollectorRegistry
    warm_bytes: int  # budget of the warm tier (configured, or sized from free memory)


class SessionCacheStore(Protocol):
    """What the engine calls on its session store. Methods marked *worker* run on the
    engine's worker thread (which owns the pool); the others may run on any thread."""

    def __len__(self) -> int: ...

    def ensure_loaded(self, identity: CacheIdentity, on_worker: OnWorker) -> Future[None] | None:
        """Start making the session ready for admission; None when it already is. The
        future completes (never with an error) once its request may be queued."""
        ...

    def describe(self) -> list[SessionCacheInfo]: ...
    def find(self, cache_id: str) -> CacheIdentity | None: ...
    def record_prompt(self, prompt_tokens: int, cached_tokens: int) -> None: ...
    def flushed(self) -> Future[None]:
        """Resolves once every save queued so far is durable."""
        ...

    def promote(self, identity: CacheIdentity, token_ids: list[int]) -> None:
        """*worker*: before admission, make the session's K/V for ``token_ids`` findable
        in the pool's prefix cache."""
        ...

    def remember(
        self, identity: CacheIdentity, salt: bytes, hashes: list[BlockHash], token_ids: list[int]
    ) -> None:
        """*worker*: after a request, before its blocks are released: the session now
        covers ``token_ids`` (whole blocks, registered in the pool under ``hashes``)."""
        ...

    def relieve_pool(self, blocks_needed: int) -> None:
        """*worker*: give pinned blocks back until ``blocks_needed`` can be allocated."""
        ...

    def offload_all(self) -> None:
        """*worker*: move every session out of the pool and memory to durable storage."""
        ...

    def delete(self, identity: CacheIdentity) -> Future[bool]:
        """*worker*: forget the session; resolves to whether anything existed."""
        ...

    def close(self) -> None:
        """Flush and stop (after the worker thread has stopped)."""
        ...


SessionStoreFactory = Callable[[SessionCacheHost], SessionCacheStore]
