"""The storage layer behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DBAPIError

from roost.errors import Conflict, NotFound, Unauthorized
from roost.security.api_keys import ApiKeyStore
from roost.security.audit import AuditLog
from roost.security.schema import CORE_MIGRATIONS
from roost.security.tenants import TenantStore
from roost.storage import Database, Migration, migrate, now_ms
from roost.storage.migrations import applied_versions


@pytest.fixture
async def migrated(database: Database) -> Database:
    await migrate(database, CORE_MIGRATIONS)
    return database


async def test_migrations_apply_once_and_record_versions(database: Database) -> None:
    first = await migrate(database, CORE_MIGRATIONS)
    second = await migrate(database, CORE_MIGRATIONS)
    versions = [m.version for m in CORE_MIGRATIONS]
    assert [m.version for m in first] == versions
    assert second == []
    # CORE_MIGRATIONS spans several components, each numbered on its own.
    for component in {m.component for m in CORE_MIGRATIONS}:
        expected = [m.version for m in CORE_MIGRATIONS if m.component == component]
        assert await applied_versions(database, component) == expected


async def test_later_migration_applies_on_top_and_keeps_data(database: Database) -> None:
    await migrate(database, CORE_MIGRATIONS)
    tenant = await TenantStore(database).create("acme")
    extra = Migration("core-test", 1, "notes", common=["CREATE TABLE notes (id TEXT PRIMARY KEY)"])
    applied = await migrate(database, [*CORE_MIGRATIONS, extra])
    assert applied == [extra]
    assert (await TenantStore(database).get(tenant.id)).name == "acme"
    await database.execute("INSERT INTO notes (id) VALUES (:id)", {"id": "n1"})
    assert await database.fetch_all("SELECT id FROM notes") == [{"id": "n1"}]


async def test_concurrent_starters_apply_each_migration_once(database_url: str) -> None:
    databases = [await Database.connect(database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(db, CORE_MIGRATIONS) for db in databases))
    finally:
        for db in databases:
            await db.close()
    # Each migration is applied by exactly one of the starters (whichever got there first).
    applied = sorted((m.component, m.version) for r in results for m in r)
    assert applied == sorted((m.component, m.version) for m in CORE_MIGRATIONS)


async def test_failed_migration_rolls_back_whole(database: Database) -> None:
    broken = Migration(
        "core-test", 1, "half", common=["CREATE TABLE half (id TEXT)", "NOT VALID SQL"]
    )
    with pytest.raises(DBAPIError):
        await migrate(database, [broken])
    assert await applied_versions(database, "core-test") == []
    fixed = Migration("core-test", 1, "half", common=["CREATE TABLE half (id TEXT)"])
    assert await migrate(database, [fixed]) == [fixed]


def test_out_of_order_migrations_are_refused() -> None:
    a = Migration("x", 2, "b")
    b = Migration("x", 1, "a")
    with pytest.raises(ValueError, match="out of order"):
        asyncio.run(migrate(None, [a, b]))  # type: ignore[arg-type]


async def test_tenants_create_get_ensure(migrated: Database) -> None:
    tenants = TenantStore(migrated)
    acme = await tenants.create("acme")
    with pytest.raises(Conflict):
        await tenants.create("acme")
    again, created = await tenants.ensure("acme")
    assert (again.id, created) == (acme.id, False)
    other, created = await tenants.ensure("globex")
    assert created and other.id != acme.id
    assert [t.name for t in await tenants.list()] == ["acme", "globex"]
    with pytest.raises(NotFound):
        await tenants.get("ten_missing")


async def test_concurrent_starters_ensure_one_tenant(database_url: str) -> None:
    """Servers starting at once on one database each ensure the default tenant: one
    creates it, the others find it, and none fails on the unique name."""
    databases = [await Database.connect(database_url) for _ in range(4)]
    try:
        await migrate(databases[0], CORE_MIGRATIONS)
        results = await asyncio.gather(*(TenantStore(db).ensure("default") for db in databases))
        with pytest.raises(Conflict):  # a plain create of a taken name is still a 409
            await TenantStore(databases[1]).create("default")
    finally:
        for db in databases:
            await db.close()
    assert len({tenant.id for tenant, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_concurrent_starters_seed_one_bootstrap_key(database_url: str) -> None:
    """Servers starting at once with the same ROOST_API_KEY store it once and all verify it."""
    plaintext = "roost_boot01_" + "s" * 32
    databases = [await Database.connect(database_url) for _ in range(4)]
    try:
        await migrate(databases[0], CORE_MIGRATIONS)
        tenant, _ = await TenantStore(databases[0]).ensure("default")
        results = await asyncio.gather(
            *(
                ApiKeyStore(db).seed(tenant.id, "bootstrap", plaintext, operator=True)
                for db in databases
            )
        )
        verified = await ApiKeyStore(databases[2]).verify(plaintext)
    finally:
        for db in databases:
            await db.close()
    assert len({key.id for key, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert verified.id == results[0][0].id and verified.operator


async def test_api_key_lifecycle(migrated: Database) -> None:
    tenant = await TenantStore(migrated).create("acme")
    keys = ApiKeyStore(migrated)
    key, plaintext = await keys.create(tenant.id, "ci")
    assert plaintext.startswith(f"roost-{key.id}-")
    verified = await keys.verify(plaintext)
    assert (verified.id, verified.tenant_id) == (key.id, tenant.id)
    row = await migrated.fetch_one("SELECT * FROM api_keys WHERE id = :id", {"id": key.id})
    assert row is not None and plaintext not in str(row.values())
    with pytest.raises(Unauthorized, match="invalid"):
        await keys.verify(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"))
    with pytest.raises(Unauthorized, match="invalid"):
        await keys.verify("roost-000000000000-nothing")
    revoked = await keys.revoke(key.id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthorized, match="revoked"):
        await keys.verify(plaintext)
    with pytest.raises(NotFound):
        await keys.revoke("nosuchkey")


async def test_expired_key_is_refused(migrated: Database) -> None:
    tenant = await TenantStore(migrated).create("acme")
    keys = ApiKeyStore(migrated)
    _, plaintext = await keys.create(tenant.id, "short", expires_at=now_ms() - 1)
    with pytest.raises(Unauthorized, match="expired"):
        await keys.verify(plaintext)


async def test_seeded_key_is_idempotent_and_verifies(migrated: Database) -> None:
    tenant = await TenantStore(migrated).create("acme")
    keys = ApiKeyStore(migrated)
    chosen = "my-deployment-secret-key-0123456789"
    first, new = await keys.seed(tenant.id, "bootstrap", chosen)
    second, again = await keys.seed(tenant.id, "bootstrap", chosen)
    assert new and not again and first.id == second.id
    assert (await keys.verify(chosen)).tenant_id == tenant.id


async def test_keys_are_listed_and_revoked_per_tenant(migrated: Database) -> None:
    tenants = TenantStore(migrated)
    acme, globex = await tenants.create("acme"), await tenants.create("globex")
    keys = ApiKeyStore(migrated)
    acme_key, _ = await keys.create(acme.id, "a")
    await keys.create(globex.id, "g")
    assert [k.id for k in await keys.list(acme.id)] == [acme_key.id]
    assert len(await keys.list()) == 2
    with pytest.raises(NotFound):
        await keys.revoke(acme_key.id, tenant_id=globex.id)
    assert (await keys.list(acme.id))[0].revoked_at is None


async def test_audit_log_is_append_only(migrated: Database) -> None:
    tenant = await TenantStore(migrated).create("acme")
    audit = AuditLog(migrated)
    first = await audit.record(tenant.id, "key:k1", "tool.call", target="fs.read", details={"n": 1})
    second = await audit.record(tenant.id, "key:k1", "tool.call", outcome="denied")
    listed = await audit.list(tenant.id)
    assert [e.id for e in listed] == [second.id, first.id]
    assert listed[1].details == {"n": 1}
    for statement in ("UPDATE audit_events SET outcome = 'ok'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            await migrated.execute(statement)
    if migrated.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            await migrated.execute("TRUNCATE audit_events")
    assert len(await audit.list(tenant.id)) == 2


async def test_transaction_rolls_back_on_error(migrated: Database) -> None:
    with pytest.raises(RuntimeError):
        async with migrated.transaction() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'x', 1)"
            )
            raise RuntimeError("abort")
    assert await migrated.fetch_all("SELECT * FROM tenants") == []
