"""What a tool handler sees of the call it serves: who, where, and with which services."""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.tools.netguard import NetworkPolicy
from roost.tools.paths import Workspace
from roost.tools.sandbox import Sandbox


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Built by the executor for each call; handlers never see credentials."""

    tenant_id: str
    actor: str
    workspace: Workspace
    sandbox: Sandbox
    network: NetworkPolicy = field(default_factory=lambda: NetworkPolicy())
    agent_id: str | None = None
    run_id: str | None = None
    call_id: str | None = None
