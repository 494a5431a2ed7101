"""One cache manager over every cache of a deployment.

Each kind reports through the same :class:`CacheKind` interface: what it holds (entries,
bytes, where), its eviction policy as configured, and a ``clear`` that takes an optional
tenant. The server builds it over its kernel (every kind, including those that live only
in its memory); the CLI without a server builds it over storage alone (what is on disk,
in the database or in Redis).

Kinds: ``kv`` (per-session KV caches, hot/warm/cold), ``prompt`` (the engine's shared
prefix cache), ``response`` (the LLM response cache), ``embeddings`` (vectors of texts
already embedded), ``vectors`` (the in-memory copy vector search scans).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from roost.errors import InvalidRequest, NotFound

KINDS = ("kv", "prompt", "response", "embeddings", "vectors")


@dataclass(slots=True)
class CacheReport:
    kind: str
    entries: int = 0
    bytes: int = 0
    where: str = ""  # process, disk, database, redis
    policy: str = ""  # eviction, as configured
    detail: dict[str, Any] = field(default_factory=dict)  # per tier, hit rates ...
    note: str = ""  # why something is not shown or not per tenant

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CacheKind(Protocol):
    name: str

    async def report(self, tenant_id: str | None) -> CacheReport: ...

    async def clear(self, tenant_id: str | None) -> CacheReport:
        """Drop entries (of one tenant when given); the report counts what was dropped."""
        ...


class CacheManager:
    def __init__(self, kinds: list[CacheKind]) -> None:
        self.kinds = {kind.name: kind for kind in kinds}

    def _chosen(self, kind: str | None) -> list[CacheKind]:
        if kind is None:
            return list(self.kinds.values())
        if kind not in KINDS:
            raise InvalidRequest(f"no cache kind {kind!r}: one of {', '.join(KINDS)}", param="kind")
        return [self.kinds[kind]] if kind in self.kinds else []

    async def stats(
        self, kind: str | None = None, tenant_id: str | None = None
    ) -> list[CacheReport]:
        return [await k.report(tenant_id) for k in self._chosen(kind)]

    async def clear(
        self, kind: str | None = None, tenant_id: str | None = None
    ) -> list[CacheReport]:
        return [await k.clear(tenant_id) for k in self._chosen(kind)]


async def resolve_tenant(tenants: Any, name_or_id: str | None) -> str | None:
    """A tenant given by name or id (``--tenant acme``) as its id; None stays None."""
    if name_or_id is None:
        return None
    found = await tenants.find_by_name(name_or_id)
    if found is not None:
        return str(found.id)
    try:
        return str((await tenants.get(name_or_id)).id)
    except NotFound:
        raise NotFound(f"no tenant {name_or_id!r}", param="tenant") from None
