"""Per-tenant limit overrides set at run time (``roost limits set``, ``PUT /admin/limits``),
kept in the database so every server applies the same ones.

Each server re-reads a tenant's override at most every ``refresh_s`` seconds, so a change
reaches every process within that time without a read on every request.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from roost.config import LimitOverride
from roost.storage import Database, now_ms


class LimitOverrideStore:
    def __init__(self, database: Database, *, refresh_s: float = 2.0) -> None:
        self.database = database
        self.refresh_s = refresh_s
        self._cache: dict[str, tuple[float, LimitOverride | None]] = {}

    async def get(self, tenant_id: str) -> LimitOverride | None:
        """The tenant's stored override (possibly ``refresh_s`` old), or None."""
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self.database.fetch_one(
            "SELECT body FROM limit_overrides WHERE tenant_id = :t", {"t": tenant_id}
        )
        value = LimitOverride.model_validate_json(row["body"]) if row else None
        self._cache[tenant_id] = (now + self.refresh_s, value)
        return value

    async def list(self) -> dict[str, LimitOverride]:
        rows = await self.database.fetch_all(
            "SELECT tenant_id, body FROM limit_overrides ORDER BY tenant_id"
        )
        return {r["tenant_id"]: LimitOverride.model_validate_json(r["body"]) for r in rows}

    async def put(self, tenant_id: str, override: LimitOverride) -> None:
        """Store ``override`` as the tenant's whole override (replacing any earlier one)."""
        body = override.model_dump_json(exclude_none=True)
        async with self.database.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO limit_overrides (tenant_id, body, updated_at) VALUES (:t, :b, :n)"
                    " ON CONFLICT (tenant_id) DO UPDATE SET body = excluded.body,"
                    " updated_at = excluded.updated_at"
                ),
                {"t": tenant_id, "b": body, "n": now_ms()},
            )
        self._cache.pop(tenant_id, None)

    async def delete(self, tenant_id: str) -> bool:
        count = await self.database.execute(
            "DELETE FROM limit_overrides WHERE tenant_id = :t", {"t": tenant_id}
        )
        self._cache.pop(tenant_id, None)
        return count > 0
