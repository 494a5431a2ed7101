"""The approval store on both backends: decisions happen once, approvals are used once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.config import load_settings
from roost.errors import Conflict, NotFound
from roost.platform import Platform
from roost.storage import migrate
from roost.tools.approvals import APPROVAL_MIGRATIONS, ApprovalStore, call_hash


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_and_tenant(
    request: pytest.FixtureRequest, roost_home: Path
) -> AsyncIterator[tuple[ApprovalStore, str]]:
    env = {"ROOST_HOME": str(roost_home)}
    if request.param == "postgres":
        env["ROOST_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    platform = await Platform.open(load_settings(env=env))
    try:
        await migrate(platform.database, APPROVAL_MIGRATIONS)
        tenant = await platform.tenants.find_by_name("default")
        assert tenant is not None
        yield ApprovalStore(platform.database), tenant.id
    finally:
        await platform.close()


async def test_lifecycle_and_single_use(store_and_tenant: tuple[ApprovalStore, str]) -> None:
    store, tenant = store_and_tenant
    pending = await store.request(
        tenant, "git_push", {"remote": "origin"}, risk="destructive", requested_by="agent:a",
        agent_id="a", run_id="r",
    )  # fmt: skip
    assert pending.status == "pending" and pending.call_hash == call_hash(
        "git_push", {"remote": "origin"}
    )
    assert [a.id for a in await store.list(tenant, status="pending")] == [pending.id]
    approved = await store.decide(tenant, pending.id, "approve", decided_by="key:boss")
    assert approved.status == "approved" and approved.decided_by == "key:boss"
    with pytest.raises(Conflict, match="already approved"):
        await store.decide(tenant, pending.id, "deny", decided_by="key:boss")
    # Two workers race to use it: exactly one wins.
    outcomes = await asyncio.gather(
        *(
            store.consume(
                tenant, pending.id, "git_push", {"remote": "origin"}, agent_id="a", run_id="r"
            )
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Approval", "Conflict"]
    with pytest.raises(NotFound):
        await store.get("ten_elsewhere", pending.id)


async def test_edit_rebinds_the_hash(store_and_tenant: tuple[ApprovalStore, str]) -> None:
    store, tenant = store_and_tenant
    pending = await store.request(
        tenant, "delete_file", {"path": "a"}, risk="destructive", requested_by="cli"
    )
    edited = await store.decide(
        tenant, pending.id, "edit", decided_by="cli", arguments={"path": "b"}
    )
    assert edited.edited and edited.call_hash == call_hash("delete_file", {"path": "b"})
    with pytest.raises(Conflict, match="other arguments"):
        await store.consume(
            tenant, pending.id, "delete_file", {"path": "a"}, agent_id=None, run_id=None
        )
    used = await store.consume(
        tenant, pending.id, "delete_file", {"path": "b"}, agent_id=None, run_id=None
    )
    assert used.consumed_at is not None
