"""Who and which request the current task acts for, so deep audit records can say so.

The HTTP layer sets it once per request; :class:`~roost.security.audit.AuditLog` fills a
record's request id (and, when the record's actor is that principal, its role) from it.
Lower layers (tools, agents) therefore write complete records without knowing HTTP.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AuditContext:
    request_id: str | None
    actor: str | None = None
    role: str | None = None


_current: ContextVar[AuditContext | None] = ContextVar("roost_audit_context", default=None)


def current() -> AuditContext | None:
    return _current.get()


def bind(context: AuditContext) -> Token[AuditContext | None]:
    return _current.set(context)


def unbind(token: Token[AuditContext | None]) -> None:
    _current.reset(token)
