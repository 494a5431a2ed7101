"""The append-only audit log: who did what, to what, with which outcome.

The database refuses UPDATE, DELETE and TRUNCATE on ``audit_events`` (triggers), so a
record once written stays as written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from roost.storage import Database, Row, new_id, now_ms


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str
    tenant_id: str
    at: int
    actor: str
    action: str
    target: str | None
    outcome: str
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row) -> AuditEvent:
        return cls(
            row["id"],
            row["tenant_id"],
            int(row["at"]),
            row["actor"],
            row["action"],
            row["target"],
            row["outcome"],
            json.loads(row["details"]),
        )


class AuditLog:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def record(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        event = AuditEvent(
            new_id("aud"), tenant_id, now_ms(), actor, action, target, outcome, details or {}
        )
        await self.database.execute(
            "INSERT INTO audit_events (id, tenant_id, at, actor, action, target, outcome, details)"
            " VALUES (:id, :tenant_id, :at, :actor, :action, :target, :outcome, :details)",
            {
                "id": event.id,
                "tenant_id": event.tenant_id,
                "at": event.at,
                "actor": event.actor,
                "action": event.action,
                "target": event.target,
                "outcome": event.outcome,
                "details": json.dumps(event.details, sort_keys=True),
            },
        )
        return event

    async def list(self, tenant_id: str, *, limit: int = 100) -> list[AuditEvent]:
        """The tenant's most recent events, newest first."""
        rows = await self.database.fetch_all(
            "SELECT * FROM audit_events WHERE tenant_id = :t ORDER BY at DESC, id DESC LIMIT :n",
            {"t": tenant_id, "n": limit},
        )
        return [AuditEvent.from_row(row) for row in rows]
