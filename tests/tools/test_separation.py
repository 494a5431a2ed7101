"""Separation of duties on approvals: who asked may not approve (unless the tenant says
so), viewers never decide, and both sides are recorded in the approval and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from roost.config import load_settings
from roost.errors import Forbidden
from roost.platform import Platform
from roost.security.audit import AuditFilter
from roost.tools.executor import ToolCall
from roost.tools.permissions import Caller
from roost.tools.service import ToolService

DELETE = ToolCall("delete_file", {"path": "gone.txt"})


async def _pending(service: ToolService, caller: Caller) -> str:
    result = await service.executor.execute(caller, DELETE)
    assert result.status == "pending_approval", result
    assert result.approval_id is not None
    return result.approval_id


async def test_a_member_cannot_approve_its_own_call_but_another_can(
    service: ToolService, platform: Platform, caller: Caller
) -> None:
    member = Caller(caller.tenant_id, "key:member", role="member")
    approval_id = await _pending(service, member)
    with pytest.raises(Forbidden, match="separation of duties"):
        await service.executor.decide(caller.tenant_id, approval_id, "approve",
                                      decided_by="key:member", decider_role="member")  # fmt: skip
    decided = await service.executor.decide(
        caller.tenant_id, approval_id, "approve", decided_by="key:owner", decider_role="owner",
        reason="checked the path",
    )  # fmt: skip
    assert decided.status == "approved"
    assert (decided.requested_by, decided.requester_role) == ("key:member", "member")
    assert (decided.decided_by, decided.decider_role) == ("key:owner", "owner")
    assert decided.reason == "checked the path"

    events = (await platform.audit.query(
        AuditFilter(tenant_id=caller.tenant_id, action="tool.approval.*"))).events  # fmt: skip
    assert [(e.actor, e.outcome) for e in events] == [("key:owner", "ok"), ("key:member", "denied")]
    assert events[0].principal_role == "owner"
    assert events[0].details["requested_by"] == "key:member"
    assert events[0].details["requester_role"] == "member"
    assert events[0].details["reason"] == "checked the path"
    assert "separation of duties" in events[1].details["refusal"]


async def test_viewers_never_decide_and_anyone_may_deny_its_own(
    service: ToolService, caller: Caller
) -> None:
    approval_id = await _pending(service, Caller(caller.tenant_id, "key:m", role="member"))
    with pytest.raises(Forbidden, match="viewer may not decide"):
        await service.executor.decide(caller.tenant_id, approval_id, "deny",
                                      decided_by="key:v", decider_role="viewer")  # fmt: skip
    denied = await service.executor.decide(caller.tenant_id, approval_id, "deny",
                                           decided_by="key:m", decider_role="member")  # fmt: skip
    assert denied.status == "denied"


async def test_the_principal_behind_an_agent_run_cannot_approve_the_agents_call(
    service: ToolService, caller: Caller
) -> None:
    token = service.minter.mint(tenant_id=caller.tenant_id, agent_id="ops", run_id="run_1",
                                tools=("delete_file",))  # fmt: skip
    agent = Caller(caller.tenant_id, "agent:ops", agent_id="ops", run_id="run_1",
                   capability=token, role="member", on_behalf_of="key:starter")  # fmt: skip
    approval_id = await _pending(service, agent)
    with pytest.raises(Forbidden, match="separation of duties"):
        await service.executor.decide(caller.tenant_id, approval_id, "approve",
                                      decided_by="key:starter", decider_role="member")  # fmt: skip
    approval = await service.executor.decide(caller.tenant_id, approval_id, "edit",
        decided_by="key:peer", decider_role="member", arguments={"path": "other.txt"})  # fmt: skip
    assert (approval.requested_by, approval.requested_for) == ("agent:ops", "key:starter")


@pytest.fixture
async def lenient(roost_home: object) -> AsyncIterator[ToolService]:
    """A deployment whose default tenant allows self-approval (by name); others do not."""
    settings = load_settings(env={"ROOST_HOME": str(roost_home),
                                  "ROOST_TOOLS__TENANT_SELF_APPROVAL": '{"default": true}'})  # fmt: skip
    platform = await Platform.open(settings)
    service = await ToolService.open(platform)
    try:
        yield service
    finally:
        await service.close()
        await platform.close()


async def test_a_tenant_may_allow_self_approval(lenient: ToolService) -> None:
    database = lenient.approvals.database
    row = await database.fetch_one("SELECT id FROM tenants WHERE name = 'default'")
    assert row is not None
    default = Caller(row["id"], "key:solo", role="owner")
    approval_id = await _pending(lenient, default)
    approved = await lenient.executor.decide(default.tenant_id, approval_id, "approve",
                                             decided_by="key:solo", decider_role="owner")  # fmt: skip
    assert approved.status == "approved"

    await database.execute("INSERT INTO tenants (id, name, created_at) VALUES ('ten_x', 'x', 0)")
    strict = Caller("ten_x", "key:solo", role="owner")
    other_id = await _pending(lenient, strict)
    with pytest.raises(Forbidden):
        await lenient.executor.decide("ten_x", other_id, "approve", decided_by="key:solo",
                                      decider_role="owner")  # fmt: skip
