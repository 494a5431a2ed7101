"""Separation of duties for approvals: who may decide on a risky call, and whether a
principal may approve a call it asked for itself (by default it may not).

Approvals exist only for high-risk calls (``tools.approval_risk``, destructive by default),
so every approval is subject to the rule. Denying one's own request is always allowed:
it can only make things safer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from roost.errors import Forbidden
from roost.tools.approvals import Approval, Decision

# Tenant roles that may decide at all (with a tool role that may approve on top).
DECIDING_ROLES = frozenset({"owner", "member"})
TenantName = Callable[[str], Awaitable[str | None]]


class SelfApprovalPolicy:
    """``tools.self_approval`` (default false) with per-tenant overrides by tenant name or id."""

    def __init__(
        self,
        default: bool = False,
        tenants: Mapping[str, bool] | None = None,
        tenant_name: TenantName | None = None,
    ) -> None:
        self.default = default
        self.tenants = dict(tenants or {})
        self.tenant_name = tenant_name

    async def allowed(self, tenant_id: str) -> bool:
        if tenant_id in self.tenants:
            return self.tenants[tenant_id]
        if self.tenants and self.tenant_name is not None:
            name = await self.tenant_name(tenant_id)
            if name is not None and name in self.tenants:
                return self.tenants[name]
        return self.default


async def check_decider(
    policy: SelfApprovalPolicy,
    approval: Approval,
    decision: Decision,
    decided_by: str,
    decider_role: str | None,
) -> None:
    """Raise :class:`Forbidden` saying why ``decided_by`` may not make this decision."""
    if decider_role is not None and decider_role not in DECIDING_ROLES:
        raise Forbidden(f"a {decider_role} may not decide approvals; an owner or member must")
    # A decided approval is refused later as "already decided", which says more.
    if approval.status != "pending" or decision == "deny":
        return
    if decided_by not in approval.requesters:
        return
    if await policy.allowed(approval.tenant_id):
        return
    raise Forbidden(
        f"separation of duties: {decided_by} requested this {approval.risk} call and may not"
        " approve it; another owner or member must (or the tenant sets self_approval = true)"
    )
