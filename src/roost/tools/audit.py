"""Where the tool layer writes its audit events; whoever builds it passes one in.

The platform passes ``roost.security.audit.AuditLog``; the tool layer depends only on
this shape, so it never imports the security layer above it.
"""

from __future__ import annotations

from typing import Any, Protocol


class AuditSink(Protocol):
    async def record(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
        role: str | None = None,
    ) -> object:
        """Append one event; the return value (the stored event) is not used here."""
        ...
