"""Durable approvals for risky tool calls: pending → approved / denied (or approved as edited).

An approval is bound to a hash of the exact tool name and canonical arguments, to the
tenant, and to the agent and run that asked. It can be used once. A call whose name or
arguments differ from what a human approved does not match the hash and is refused, so
neither renaming the tool nor changing an argument after approval gets through.

How a graph run carries it: the agent runtime calls the executor; a ``pending_approval``
result makes the tool node raise the graph's ``interrupt()`` with the approval (id, tool,
arguments, risk) as the interrupt value. The run's checkpoint holds it; ``POST
/v1/approvals/{id}`` records the decision and resumes the run, whose tool node calls
the executor again with ``approval_id`` (and, after an edit, the edited arguments).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from roost.errors import Conflict, NotFound
from roost.storage import Database, Migration, Row, new_id, now_ms

ApprovalStatus = Literal["pending", "approved", "denied"]
Decision = Literal["approve", "deny", "edit"]

APPROVAL_MIGRATIONS = [
    Migration(
        component="tools",
        version=1,
        name="tool approvals",
        common=[
            """CREATE TABLE tool_approvals (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                tool TEXT NOT NULL,
                arguments TEXT NOT NULL,
                call_hash TEXT NOT NULL,
                risk TEXT NOT NULL,
                status TEXT NOT NULL,
                edited INTEGER NOT NULL DEFAULT 0,
                requested_by TEXT NOT NULL,
                agent_id TEXT,
                run_id TEXT,
                call_id TEXT,
                reason TEXT,
                decided_by TEXT,
                created_at BIGINT NOT NULL,
                decided_at BIGINT,
                consumed_at BIGINT,
                expires_at BIGINT NOT NULL
            )""",
            "CREATE INDEX tool_approvals_by_tenant_status ON tool_approvals (tenant_id, status)",
        ],
    ),
    Migration(
        component="tools",
        version=2,
        name="approvals record both principals' roles",
        common=[
            # The principal behind an agent's request (who started the run).
            "ALTER TABLE tool_approvals ADD COLUMN requested_for TEXT",
            "ALTER TABLE tool_approvals ADD COLUMN requester_role TEXT",
            "ALTER TABLE tool_approvals ADD COLUMN decider_role TEXT",
        ],
    ),
]


def call_hash(tool: str, arguments: Mapping[str, Any]) -> str:
    """SHA-256 of the tool name and its arguments in canonical JSON."""
    canonical = json.dumps(
        {"tool": tool, "arguments": arguments}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Approval:
    id: str
    tenant_id: str
    tool: str
    arguments: dict[str, Any]
    call_hash: str
    risk: str
    status: ApprovalStatus
    edited: bool
    requested_by: str
    agent_id: str | None
    run_id: str | None
    call_id: str | None
    reason: str | None
    decided_by: str | None
    created_at: int
    decided_at: int | None
    consumed_at: int | None
    expires_at: int
    requested_for: str | None = None
    requester_role: str | None = None
    decider_role: str | None = None

    @property
    def requesters(self) -> set[str]:
        """Every principal this call was requested by or for (separation of duties)."""
        return {p for p in (self.requested_by, self.requested_for) if p}

    @classmethod
    def from_row(cls, row: Row) -> Approval:
        return cls(
            **{
                **row,
                "arguments": json.loads(row["arguments"]),
                "edited": bool(row["edited"]),
                "created_at": int(row["created_at"]),
                "expires_at": int(row["expires_at"]),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "arguments": self.arguments,
            "risk": self.risk,
            "status": self.status,
            "edited": self.edited,
            "requested_by": self.requested_by,
            "requested_for": self.requested_for,
            "requester_role": self.requester_role,
            "decider_role": self.decider_role,
            "agent_id": self.agent_id,
            "run_id": self.run_id,
            "call_id": self.call_id,
            "reason": self.reason,
            "decided_by": self.decided_by,
            "created_at": self.created_at,
            "decided_at": self.decided_at,
            "used": self.consumed_at is not None,
            "expires_at": self.expires_at,
        }


class ApprovalStore:
    def __init__(self, database: Database, *, ttl_s: float = 24 * 3600) -> None:
        self.database = database
        self.ttl_ms = int(ttl_s * 1000)

    async def request(
        self,
        tenant_id: str,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        risk: str,
        requested_by: str,
        requested_for: str | None = None,
        requester_role: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        call_id: str | None = None,
    ) -> Approval:
        """Record a pending approval for exactly this call."""
        at = now_ms()
        row = {
            "id": new_id("apr"),
            "tenant_id": tenant_id,
            "tool": tool,
            "arguments": json.dumps(dict(arguments), sort_keys=True, default=str),
            "call_hash": call_hash(tool, arguments),
            "risk": risk,
            "status": "pending",
            "edited": 0,
            "requested_by": requested_by,
            "requested_for": requested_for,
            "requester_role": requester_role,
            "decider_role": None,
            "agent_id": agent_id,
            "run_id": run_id,
            "call_id": call_id,
            "reason": None,
            "decided_by": None,
            "created_at": at,
            "decided_at": None,
            "consumed_at": None,
            "expires_at": at + self.ttl_ms,
        }
        columns = ", ".join(row)
        await self.database.execute(
            f"INSERT INTO tool_approvals ({columns}) VALUES ({', '.join(':' + c for c in row)})",
            row,
        )
        return Approval.from_row(row)

    async def get(self, tenant_id: str, approval_id: str) -> Approval:
        row = await self.database.fetch_one(
            "SELECT * FROM tool_approvals WHERE id = :id AND tenant_id = :t",
            {"id": approval_id, "t": tenant_id},
        )
        if row is None:
            raise NotFound(f"approval {approval_id!r} not found", param="approval_id")
        return Approval.from_row(row)

    async def list(
        self, tenant_id: str, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]:
        """The tenant's approvals, newest first, optionally of one status."""
        where = "tenant_id = :t" + (" AND status = :s" if status else "")
        rows = await self.database.fetch_all(
            f"SELECT * FROM tool_approvals WHERE {where} ORDER BY created_at DESC, id DESC"
            " LIMIT :n",
            {"t": tenant_id, "s": status, "n": limit},
        )
        return [Approval.from_row(row) for row in rows]

    async def decide(
        self,
        tenant_id: str,
        approval_id: str,
        decision: Decision,
        *,
        decided_by: str,
        decider_role: str | None = None,
        reason: str | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> Approval:
        """Approve, deny, or approve with edited arguments; only a pending approval changes."""
        current = await self.get(tenant_id, approval_id)
        params: dict[str, Any] = {
            "id": approval_id,
            "t": tenant_id,
            "by": decided_by,
            "by_role": decider_role,
            "reason": reason,
            "at": now_ms(),
            "status": "denied" if decision == "deny" else "approved",
            "args": json.dumps(dict(arguments or current.arguments), sort_keys=True, default=str),
            "hash": call_hash(current.tool, arguments or current.arguments),
            "edited": 1 if decision == "edit" else 0,
        }
        if decision == "edit" and arguments is None:
            raise Conflict("an edit needs the new arguments", param="arguments")
        changed = await self.database.execute(
            "UPDATE tool_approvals SET status = :status, decided_by = :by, decider_role = :by_role,"
            " reason = :reason,"
            " decided_at = :at, arguments = :args, call_hash = :hash, edited = :edited"
            " WHERE id = :id AND tenant_id = :t AND status = 'pending'",
            params,
        )
        if not changed:
            raise Conflict(f"approval {approval_id} is already {current.status}")
        return await self.get(tenant_id, approval_id)

    async def consume(
        self,
        tenant_id: str,
        approval_id: str,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        agent_id: str | None,
        run_id: str | None,
    ) -> Approval:
        """Use an approval for this exact call, once; :class:`Conflict` says why not."""
        approval = await self.get(tenant_id, approval_id)
        if approval.status == "pending":
            raise Conflict(f"approval {approval_id} is still pending")
        if approval.status == "denied":
            return approval  # the executor turns a denial into the agent's tool error
        if approval.consumed_at is not None:
            raise Conflict(f"approval {approval_id} has already been used")
        if approval.expires_at <= now_ms():
            raise Conflict(f"approval {approval_id} has expired")
        if (approval.agent_id, approval.run_id) != (agent_id, run_id):
            raise Conflict(f"approval {approval_id} was given to another agent or run")
        if approval.call_hash != call_hash(tool, arguments):
            raise Conflict(
                f"approval {approval_id} covers {approval.tool} with other arguments;"
                " a changed call needs a new approval"
            )
        used = await self.database.execute(
            "UPDATE tool_approvals SET consumed_at = :at WHERE id = :id AND tenant_id = :t"
            " AND status = 'approved' AND consumed_at IS NULL",
            {"at": now_ms(), "id": approval_id, "t": tenant_id},
        )
        if not used:
            raise Conflict(f"approval {approval_id} has already been used")
        return await self.get(tenant_id, approval_id)
