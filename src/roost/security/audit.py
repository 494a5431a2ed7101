"""The append-only, hash-chained audit log: who did what, to what, with which outcome.

The database refuses UPDATE, DELETE and TRUNCATE on ``audit_events`` (triggers), so a
record once written stays as written; the hash chain (see :mod:`audit_chain`) makes a
change behind the triggers' back detectable by ``roost audit verify``.

Appends of one tenant are serialised on its ``audit_heads`` row: the head is read and
advanced in the same transaction as the insert (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` already holds the database's write lock), so concurrent
writers in any number of processes extend one chain and never fork it. An append that
fails raises: callers that must not act unaudited let the error fail the action.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from roost.errors import InvalidRequest
from roost.security import audit_context
from roost.security.audit_chain import GENESIS, record_hash
from roost.storage import Database, Row, new_id, now_ms

MAX_PAGE = 1000


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
    seq: int | None = None  # None: written before the chain existed
    request_id: str | None = None
    principal_role: str | None = None
    prev_hash: str | None = None
    hash: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> AuditEvent:
        return cls(
            row["id"], row["tenant_id"], int(row["at"]), row["actor"], row["action"],
            row["target"], row["outcome"], json.loads(row["details"]),
            None if row.get("seq") is None else int(row["seq"]), row.get("request_id"),
            row.get("principal_role"), row.get("prev_hash"), row.get("hash"),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "tenant_id": self.tenant_id, "seq": self.seq, "at": self.at,
            "actor": self.actor, "principal_role": self.principal_role, "action": self.action,
            "target": self.target, "outcome": self.outcome, "request_id": self.request_id,
            "details": self.details, "prev_hash": self.prev_hash, "hash": self.hash,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What ``GET /v1/audit`` and ``roost audit list`` narrow a listing by.

    ``action`` matches exactly, or as a prefix when it ends in ``*`` (``tool.*``)."""

    tenant_id: str | None = None  # None: every tenant (operators only)
    action: str | None = None
    actor: str | None = None
    outcome: str | None = None
    target: str | None = None
    request_id: str | None = None
    since: int | None = None  # epoch ms, inclusive
    until: int | None = None  # epoch ms, exclusive


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None


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
        request_id: str | None = None,
        role: str | None = None,
    ) -> AuditEvent:
        """Append one event to ``tenant_id``'s chain; raises when it could not be stored."""
        async with self.database.transaction() as conn:
            return await self.append(
                conn, tenant_id, actor, action, target=target, outcome=outcome,
                details=details, request_id=request_id, role=role,
            )  # fmt: skip

    async def append(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        role: str | None = None,
    ) -> AuditEvent:
        """Append inside the caller's transaction: the change and its record commit together
        (or neither does), which is how security-relevant changes fail closed."""
        context = audit_context.current()
        if context is not None:
            request_id = request_id or context.request_id
            if role is None and context.actor == actor:
                role = context.role
        row: dict[str, Any] = {
            "id": new_id("aud"), "tenant_id": tenant_id, "at": now_ms(), "actor": actor,
            "principal_role": role, "action": action, "target": target, "outcome": outcome,
            "request_id": request_id,
            # Stored as text; hashed as the parsed object, so either backend hashes alike.
            "details": json.loads(json.dumps(details or {}, sort_keys=True, default=str)),
        }  # fmt: skip
        # The head row exists from a tenant's first append on; creating it races harmlessly.
        await conn.execute(
            text(
                "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (:t, 0, :g)"
                " ON CONFLICT (tenant_id) DO NOTHING"
            ),
            {"t": tenant_id, "g": GENESIS},
        )
        lock = " FOR UPDATE" if self.database.dialect == "postgresql" else ""
        head = (
            await conn.execute(
                text(f"SELECT seq, hash FROM audit_heads WHERE tenant_id = :t{lock}"),
                {"t": tenant_id},
            )
        ).one()
        row["seq"], row["prev_hash"] = int(head.seq) + 1, str(head.hash)
        row["hash"] = record_hash(row)
        await conn.execute(
            text(
                "INSERT INTO audit_events (id, tenant_id, at, actor, action, target, outcome,"
                " details, seq, request_id, principal_role, prev_hash, hash) VALUES (:id,"
                " :tenant_id, :at, :actor, :action, :target, :outcome, :details_text, :seq,"
                " :request_id, :principal_role, :prev_hash, :hash)"
            ),
            {**row, "details_text": json.dumps(row["details"], sort_keys=True)},
        )
        await conn.execute(
            text("UPDATE audit_heads SET seq = :seq, hash = :hash WHERE tenant_id = :t"),
            {"seq": row["seq"], "hash": row["hash"], "t": tenant_id},
        )
        return AuditEvent(**row)

    async def list(self, tenant_id: str, *, limit: int = 100) -> list[AuditEvent]:
        """The tenant's most recent events, newest first."""
        return (await self.query(AuditFilter(tenant_id=tenant_id), limit=limit)).events

    async def query(
        self, where: AuditFilter, *, limit: int = 100, cursor: str | None = None
    ) -> AuditPage:
        """Events matching ``where``, newest first; ``cursor`` continues a previous page."""
        limit = max(1, min(limit, MAX_PAGE))
        clauses, params = _clauses(where)
        if cursor is not None:
            at, event_id = _decode_cursor(cursor)
            clauses.append("(at < :c_at OR (at = :c_at AND id < :c_id))")
            params.update(c_at=at, c_id=event_id)
        sql = "SELECT * FROM audit_events"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = await self.database.fetch_all(
            f"{sql} ORDER BY at DESC, id DESC LIMIT :n", {**params, "n": limit + 1}
        )
        events = [AuditEvent.from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(events, _encode_cursor(events[-1]) if more and events else None)


def _clauses(where: AuditFilter) -> tuple[list[str], dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for column in ("tenant_id", "actor", "outcome", "target", "request_id"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if where.action is not None:
        if where.action.endswith("*"):
            prefix = where.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("action LIKE :action ESCAPE '\\'")
            params["action"] = prefix + "%"
        else:
            clauses.append("action = :action")
            params["action"] = where.action
    if where.since is not None:
        clauses.append("at >= :since")
        params["since"] = where.since
    if where.until is not None:
        clauses.append("at < :until")
        params["until"] = where.until
    return clauses, params


def _encode_cursor(event: AuditEvent) -> str:
    raw = json.dumps([event.at, event.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, event_id = json.loads(raw)
        if not isinstance(at, int) or not isinstance(event_id, str):
            raise ValueError("cursor fields")
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidRequest("cursor is not one this server handed out", param="cursor") from exc
    return at, event_id
