"""The audit log's hash chain on both backends: appends link up, concurrent writers in
separate connection pools never fork a tenant's chain, and a record changed or removed
behind the triggers' back is named by the verifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from roost.errors import InvalidRequest
from roost.security.audit import AuditFilter, AuditLog
from roost.security.audit_chain import GENESIS
from roost.security.audit_verify import verify_audit
from roost.security.schema import CORE_MIGRATIONS
from roost.security.tenants import TenantStore
from roost.storage import Database, migrate

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{request.getfixturevalue('tmp_path')}/h-audit.db"
    else:
        url = request.getfixturevalue("postgres_url")
    db = await Database.connect(url)
    await migrate(db, CORE_MIGRATIONS)
    try:
        yield db
    finally:
        await db.close()


async def _drop_triggers(db: Database) -> None:
    """What an intruder with database access does first."""
    if db.dialect == "sqlite":
        await db.execute("DROP TRIGGER audit_events_no_update")
        await db.execute("DROP TRIGGER audit_events_no_delete")
    else:
        await db.execute("DROP TRIGGER audit_events_no_change ON audit_events")


async def test_appends_link_into_a_chain_per_tenant(database: Database) -> None:
    tenants = TenantStore(database)
    a, b = await tenants.create("a"), await tenants.create("b")
    audit = AuditLog(database)
    first = await audit.record(a.id, "key:1", "tenant.create", target=a.id, role="owner")
    await audit.record(b.id, "key:2", "tenant.create", target=b.id)
    second = await audit.record(a.id, "key:1", "api_key.create", details={"n": 1})
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    stored = await audit.list(a.id)
    assert [e.id for e in stored] == [second.id, first.id]
    assert stored[1].principal_role == "owner" and stored[0].details == {"n": 1}
    report = await verify_audit(database)
    assert report.ok and report.checked == {a.id: 2, b.id: 1}


async def test_verify_names_a_changed_record(database: Database) -> None:
    tenant = await TenantStore(database).create("t")
    audit = AuditLog(database)
    events = [await audit.record(tenant.id, "key:1", "tool.call", outcome="ok") for _ in range(4)]
    await _drop_triggers(database)
    await database.execute(
        "UPDATE audit_events SET outcome = 'denied' WHERE id = :id", {"id": events[2].id}
    )
    report = await verify_audit(database)
    assert not report.ok
    (broken,) = report.breaks
    assert (broken.event_id, broken.seq) == (events[2].id, 3)
    assert "changed" in broken.reason


async def test_verify_names_the_record_after_a_removed_one(database: Database) -> None:
    tenant = await TenantStore(database).create("t")
    audit = AuditLog(database)
    events = [await audit.record(tenant.id, "cli", "limits.set") for _ in range(3)]
    await _drop_triggers(database)
    await database.execute("DELETE FROM audit_events WHERE id = :id", {"id": events[1].id})
    (broken,) = (await verify_audit(database)).breaks
    assert broken.event_id == events[2].id and "removed" in broken.reason


async def test_verify_notices_a_cut_off_tail(database: Database) -> None:
    tenant = await TenantStore(database).create("t")
    audit = AuditLog(database)
    events = [await audit.record(tenant.id, "cli", "limits.set") for _ in range(3)]
    await _drop_triggers(database)
    await database.execute("DELETE FROM audit_events WHERE id = :id", {"id": events[2].id})
    (broken,) = (await verify_audit(database, tenant.id)).breaks
    assert broken.event_id is None and broken.seq == 3


async def test_filters_and_cursor_pages(database: Database) -> None:
    tenants = TenantStore(database)
    a, b = await tenants.create("a"), await tenants.create("b")
    audit = AuditLog(database)
    for i in range(5):
        await audit.record(a.id, "key:1", "tool.call", target=f"t{i}", outcome="ok")
    await audit.record(a.id, "key:2", "tool.approval.approve", target="apr_1")
    await audit.record(b.id, "key:3", "tool.call", target="other")

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await audit.query(AuditFilter(tenant_id=a.id, action="tool.call"), limit=2,
                                 cursor=cursor)  # fmt: skip
        seen += [e.target or "" for e in page.events]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["t4", "t3", "t2", "t1", "t0"]
    prefixed = await audit.query(AuditFilter(tenant_id=a.id, action="tool.*"))
    assert len(prefixed.events) == 6
    everyone = await audit.query(AuditFilter(action="tool.call"))
    assert {e.tenant_id for e in everyone.events} == {a.id, b.id}
    assert (await audit.query(AuditFilter(actor="key:2"))).events[0].target == "apr_1"
    with pytest.raises(InvalidRequest):
        await audit.query(AuditFilter(), cursor="not-a-cursor")


@pytest.mark.postgres
async def test_concurrent_writers_in_separate_pools_never_fork_the_chain(
    postgres_url: str,
) -> None:
    """Four connection pools (as four processes would have) append 30 records each at once."""
    setup = await Database.connect(postgres_url)
    await migrate(setup, CORE_MIGRATIONS)
    tenant = await TenantStore(setup).create("busy")
    pools = [await Database.connect(postgres_url) for _ in range(4)]
    try:

        async def writer(db: Database, n: int) -> None:
            log = AuditLog(db)
            for i in range(30):
                await log.record(tenant.id, f"key:{n}", "tool.call", target=str(i))

        await asyncio.gather(*(writer(db, n) for n, db in enumerate(pools)))
        rows = await setup.fetch_all(
            "SELECT seq FROM audit_events WHERE tenant_id = :t ORDER BY seq", {"t": tenant.id}
        )
        assert [int(r["seq"]) for r in rows] == list(range(1, 121))
        report = await verify_audit(setup, tenant.id)
        assert report.ok and report.checked[tenant.id] == 120
    finally:
        for db in pools:
            await db.close()
        await setup.close()
