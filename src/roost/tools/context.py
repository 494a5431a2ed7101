"""What a tool handler sees of the call it serves: who, where, and with which services."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from roost.tools.netguard import NetworkPolicy
from roost.tools.paths import Workspace
from roost.tools.sandbox import CommandResult, Sandbox, SandboxPolicy


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
    # The approval this call consumed (or, in a prepare, is asking for): the ticket of a
    # jail prepared while it was pending (roost.tools.prewarm).
    approval_id: str | None = None
    # Until when a prepared jail may wait (the approval's expiry), seconds from now.
    approval_ttl_s: float | None = None

    async def run_command(
        self,
        argv: Sequence[str],
        cwd: Path | None = None,
        *,
        policy: SandboxPolicy | None = None,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` in the sandbox in this call's workspace, on its tenant's limits."""
        return await self.sandbox.run(
            argv,
            cwd or self.workspace.root,
            workspace_root=self.workspace.root,
            policy=policy,
            stdin=stdin,
            env=env,
            tenant_id=self.tenant_id,
            quota_root=self.workspace.quota_root,
            ticket=self.approval_id,
        )

    async def prepare_command(
        self,
        argv: Sequence[str],
        cwd: Path | None = None,
        *,
        policy: SandboxPolicy | None = None,
        env: Mapping[str, str] | None = None,
    ) -> bool:
        """Start the jail :meth:`run_command` will run ``argv`` in once the pending
        approval is granted; nothing of ``argv`` runs now."""
        if self.approval_id is None:
            return False
        return await self.sandbox.prepare(
            argv,
            cwd or self.workspace.root,
            workspace_root=self.workspace.root,
            ticket=self.approval_id,
            policy=policy,
            env=env,
            tenant_id=self.tenant_id,
            quota_root=self.workspace.quota_root,
            lifetime_s=self.approval_ttl_s,
        )
