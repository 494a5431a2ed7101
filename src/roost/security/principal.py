"""The authenticated caller of a request, as every layer below the server sees it.

A principal acts in one tenant with one tenant role; ``operator`` is a separate, platform-wide
flag (models, swaps, every tenant's caches) that no tenant role implies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a principal may do inside its tenant; each role includes the ones below it."""

    OWNER = "owner"  # manage the tenant: keys, agents, limits, budgets, tools policy
    MEMBER = "member"  # use it: agents, runs, chat, memory, knowledge
    VIEWER = "viewer"  # read runs, traces, usage

    @property
    def rank(self) -> int:
        return _RANK[self]

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.OWNER: 2}
ROLE_NAMES = tuple(role.value for role in Role)


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller resolved from credentials: the tenant it acts for, the credential it used
    (an API key id, or a JWT subject), its role there, and whether it is a platform operator."""

    tenant_id: str
    key_id: str | None  # None when authentication is disabled for local development
    role: Role = Role.OWNER
    operator: bool = False
    subject: str | None = None  # the JWT ``sub`` when the caller signed in with a token

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.subject is not None:
            return f"jwt:{self.subject}"
        return f"key:{self.key_id}" if self.key_id else "anonymous"
