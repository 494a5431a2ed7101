"""The authenticated caller of a request, as every layer below the server sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller resolved from credentials: the tenant it acts for and the key it used."""

    tenant_id: str
    key_id: str | None  # None when authentication is disabled for local development

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"key:{self.key_id}" if self.key_id else "anonymous"
