"""Prompts as a kernel service: the store behind an in-process cache.

Runs resolve ``prompt: name@label`` at every start, so a resolution is cached for
``cache_ttl_s`` (a moved label is seen within that time). When the store is briefly
unreachable a resolution past its TTL is served stale for up to ``stale_for_s`` more,
so runs keep starting through a database blip; a name never resolved before fails
(nothing to serve), and so does a stale entry past its grace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from roost.errors import StorageUnavailable
from roost.observe.logging import get_logger
from roost.prompts.schema import PROMPT_MIGRATIONS
from roost.prompts.store import PromptRef, PromptStore, PromptVersion
from roost.storage import Database, migrate

log = get_logger("roost.prompts")
# What "the store is unreachable" looks like from SQLAlchemy's drivers.
UNREACHABLE = (OSError, DBAPIError, StorageUnavailable, TimeoutError)


@dataclass(frozen=True, slots=True)
class _Entry:
    version: PromptVersion
    fetched_at: float


class PromptService:
    """Create, label and resolve prompts; resolutions are cached per tenant and reference."""

    def __init__(
        self,
        store: PromptStore,
        *,
        cache_ttl_s: float = 10.0,
        stale_for_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_ttl_s = cache_ttl_s
        self.stale_for_s = stale_for_s
        self._clock = clock
        self._cache: dict[tuple[str, str, str | int], _Entry] = {}
        self.stale_served = 0

    @classmethod
    async def open(
        cls, database: Database, *, cache_ttl_s: float = 10.0, stale_for_s: float = 300.0
    ) -> PromptService:
        await migrate(database, PROMPT_MIGRATIONS)
        return cls(PromptStore(database), cache_ttl_s=cache_ttl_s, stale_for_s=stale_for_s)

    async def resolve(self, tenant_id: str, reference: str | PromptRef) -> PromptVersion:
        """The version ``reference`` names now (cached; stale while the store is down)."""
        ref = PromptRef.parse(reference) if isinstance(reference, str) else reference
        key = (tenant_id, ref.name, ref.ref)
        now = self._clock()
        entry = self._cache.get(key)
        if entry is not None and now - entry.fetched_at < self.cache_ttl_s:
            return entry.version
        try:
            version = await self.store.get(tenant_id, ref)
        except UNREACHABLE as exc:
            if entry is None or now - entry.fetched_at >= self.cache_ttl_s + self.stale_for_s:
                raise StorageUnavailable(
                    f"the prompt store is unreachable and prompt {str(ref)!r} is not cached"
                ) from exc
            self.stale_served += 1
            log.warning("prompt store unreachable; serving a cached prompt", prompt=str(ref))
            return entry.version
        self._cache[key] = _Entry(version, now)
        return version

    def forget(self, tenant_id: str, name: str) -> None:
        """Drop this process's cached resolutions of ``name`` (after a change made here)."""
        for key in [k for k in self._cache if k[0] == tenant_id and k[1] == name]:
            del self._cache[key]
