"""Tenants: the unit of isolation. Every stored record carries a tenant id."""

from __future__ import annotations

from dataclasses import dataclass

from roost.errors import Conflict, NotFound
from roost.security import DEFAULT_TENANT as DEFAULT_TENANT
from roost.security.auth_changes import AuthChangeFeed
from roost.storage import Database, Row, new_id, now_ms


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: int
    disabled_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> Tenant:
        return cls(row["id"], row["name"], int(row["created_at"]), row["disabled_at"])


class TenantStore:
    def __init__(self, database: Database, changes: AuthChangeFeed | None = None) -> None:
        self.database = database
        self.changes = changes  # told when a tenant is disabled or enabled here

    async def create(self, name: str) -> Tenant:
        if await self.find_by_name(name) is not None:
            raise Conflict(f"tenant {name!r} already exists", param="name")
        tenant = Tenant(new_id("ten"), name, now_ms(), None)
        # Two processes may create the same name at once (two servers starting on one
        # database): the one whose insert finds the name taken answers Conflict too.
        inserted = await self.database.execute(
            "INSERT INTO tenants (id, name, created_at) VALUES (:id, :name, :at)"
            " ON CONFLICT (name) DO NOTHING",
            {"id": tenant.id, "name": tenant.name, "at": tenant.created_at},
        )
        if not inserted:
            raise Conflict(f"tenant {name!r} already exists", param="name")
        return tenant

    async def get(self, tenant_id: str) -> Tenant:
        row = await self.database.fetch_one(
            "SELECT * FROM tenants WHERE id = :id", {"id": tenant_id}
        )
        if row is None:
            raise NotFound(f"tenant {tenant_id[:60]!r} not found", param="tenant_id")
        return Tenant.from_row(row)

    async def find_by_name(self, name: str) -> Tenant | None:
        row = await self.database.fetch_one("SELECT * FROM tenants WHERE name = :n", {"n": name})
        return Tenant.from_row(row) if row else None

    async def list(self) -> list[Tenant]:
        rows = await self.database.fetch_all("SELECT * FROM tenants ORDER BY created_at, id")
        return [Tenant.from_row(row) for row in rows]

    async def set_disabled(self, tenant_id: str, disabled: bool) -> Tenant:
        """Disable a tenant (its keys stop working at once) or enable it again."""
        tenant = await self.get(tenant_id)
        if tenant.name == DEFAULT_TENANT and disabled:
            raise Conflict("the default tenant holds the operator's keys; it cannot be disabled")
        await self.database.execute(
            "UPDATE tenants SET disabled_at = :at WHERE id = :id",
            {"at": now_ms() if disabled else None, "id": tenant_id},
        )
        if self.changes is not None:
            self.changes.changed_here()
        return await self.get(tenant_id)

    async def ensure(self, name: str) -> tuple[Tenant, bool]:
        """The tenant called ``name``, created if missing; the flag says whether it was created."""
        existing = await self.find_by_name(name)
        if existing is not None:
            return existing, False
        try:
            return await self.create(name), True
        except Conflict:  # another process created it between our look and our insert
            found = await self.find_by_name(name)
            assert found is not None
            return found, False
