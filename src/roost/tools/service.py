"""The tool layer of one deployment, built from settings: what the server and CLI open."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from roost.config import Settings, ToolRoleSettings, ToolsSettings
from roost.storage import Database, migrate
from roost.tools.approvals import APPROVAL_MIGRATIONS, ApprovalStore
from roost.tools.audit import AuditSink
from roost.tools.base import RiskLevel
from roost.tools.builtin import builtin_toolset
from roost.tools.executor import ToolExecutor
from roost.tools.isolation import detect_isolation
from roost.tools.mcp_client import McpToolset
from roost.tools.netguard import NetworkPolicy
from roost.tools.paths import Workspace
from roost.tools.permissions import Caller, CapabilityMinter, PermissionPolicy, Role
from roost.tools.registry import ToolRegistry
from roost.tools.sandbox import DEFAULT_EXECUTABLES, Sandbox, SandboxPolicy
from roost.tools.separation import SelfApprovalPolicy, TenantName
from roost.tools.tenant_limits import TenantCommandLimits

log = logging.getLogger(__name__)
_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9_.-]")


def _tenant_name(database: Database) -> TenantName:
    """Looks a tenant's name up, so per-tenant settings may name tenants as people do."""

    async def name_of(tenant_id: str) -> str | None:
        row = await database.fetch_one("SELECT name FROM tenants WHERE id = :id", {"id": tenant_id})
        return None if row is None else str(row["name"])

    return name_of


class ToolHost(Protocol):
    """What the tool layer is opened from (the platform kernel): settings, the database
    for its approval tables, and the audit log it writes every call to."""

    @property
    def settings(self) -> Settings: ...
    @property
    def database(self) -> Database: ...
    @property
    def audit(self) -> AuditSink: ...


def sandbox_policy(settings: ToolsSettings) -> SandboxPolicy:
    executables = settings.allowed_executables
    return SandboxPolicy(
        allowed_executables=frozenset(executables) if executables else DEFAULT_EXECUTABLES,
        network=settings.command_network,
        network_hosts=frozenset(settings.command_network_hosts),
        network_exempt=tuple(settings.command_network_allowed_networks),
        timeout_s=settings.command_timeout_s,
        cpu_seconds=settings.command_cpu_s,
        memory_bytes=settings.command_memory_mb * 1024 * 1024,
        max_processes=settings.command_max_processes,
        max_output_bytes=settings.command_max_output_kb * 1024,
        allow_unjailed=settings.allow_unjailed_commands,
    )


def open_sandbox(settings: ToolsSettings) -> Sandbox:
    """The deployment's sandbox, on the jail probed at start-up; says loudly what is unsafe."""
    isolation = detect_isolation(settings.command_uid)
    limits = TenantCommandLimits(
        max_concurrent=settings.max_commands_per_tenant,
        disk_quota_bytes=settings.workspace_quota_mb * 1024 * 1024,
    )
    if isolation.jail is None and settings.allow_unjailed_commands:
        log.error(
            "tools.allow_unjailed_commands is set and there is no working jail (%s): tenants'"
            " commands run UNJAILED as this server's user, with its files and network in reach",
            isolation.jail_problem,
        )
    elif isolation.jail is None:
        log.error("commands are refused: %s", "; ".join(isolation.warnings))
    if settings.command_network and not settings.command_network_hosts:
        log.error("tools.command_network is set but no host is granted: every command is refused")
    return Sandbox(sandbox_policy(settings), isolation, limits)


def _role(name: str, spec: ToolRoleSettings) -> Role:
    return Role(
        name,
        RiskLevel(spec.max_risk),
        tools=tuple(spec.tools),
        paths=tuple(spec.paths),
        hosts=tuple(spec.hosts),
        executables=tuple(spec.executables),
        may_approve=spec.may_approve,
    )


def workspace_root(settings: Settings) -> Path:
    return settings.tools.workspaces_dir or settings.home / "workspaces"


@dataclass(frozen=True, slots=True)
class WorkspacePerAgent:
    """One workspace per tenant and agent: ``<root>/<tenant>/<agent or 'default'>``."""

    root: Path

    def __call__(self, caller: Caller) -> Workspace:
        tenant = _SAFE_SEGMENT.sub("_", caller.tenant_id)
        agent = _SAFE_SEGMENT.sub("_", caller.agent_id or "default")
        return Workspace(self.root / tenant / agent, quota_root=self.root / tenant)


@dataclass
class ToolService:
    """Registry, executor, approvals and capability minter of one deployment."""

    registry: ToolRegistry
    executor: ToolExecutor
    approvals: ApprovalStore
    minter: CapabilityMinter
    _exit: AsyncExitStack = field(default_factory=AsyncExitStack)

    @classmethod
    async def open(cls, platform: ToolHost, *, connect_mcp: bool = True) -> ToolService:
        """Migrate the tool tables, build the services, connect configured MCP servers."""
        settings = platform.settings
        tools = settings.tools
        await migrate(platform.database, APPROVAL_MIGRATIONS)
        secret = (
            tools.capability_secret.get_secret_value().encode()
            if tools.capability_secret
            else secrets.token_bytes(32)
        )
        minter = CapabilityMinter(hashlib.sha256(secret).digest())
        permissions = PermissionPolicy(
            minter,
            roles={name: _role(name, spec) for name, spec in tools.roles.items()},
            bindings=tools.role_bindings,
            default_role=tools.default_role,
            agent_role=tools.agent_role,
        )
        registry = ToolRegistry([builtin_toolset()])
        approvals = ApprovalStore(platform.database, ttl_s=tools.approval_ttl_s)
        executor = ToolExecutor(
            registry,
            permissions,
            approvals,
            platform.audit,
            sandbox=open_sandbox(tools),
            workspace_for=WorkspacePerAgent(workspace_root(settings)),
            network=NetworkPolicy(
                allowed_hosts=frozenset(tools.http_allowed_hosts),
                allowed_networks=tuple(tools.http_allowed_networks),
            ),
            approval_risk=RiskLevel(tools.approval_risk),
            max_parallel=tools.max_parallel,
            self_approval=SelfApprovalPolicy(
                tools.self_approval, tools.tenant_self_approval, _tenant_name(platform.database)
            ),
        )
        service = cls(registry, executor, approvals, minter)
        if connect_mcp:
            service.add_mcp_servers(tools)
        return service

    def add_mcp_servers(self, tools: ToolsSettings) -> None:
        """Offer the configured MCP servers' tools (closed with the service)."""
        for server in tools.mcp_servers:
            # Connected lazily on first listing: a server that is down at start-up
            # leaves its tools missing (and retried), not Roost unable to start.
            toolset = McpToolset.from_settings(server)
            self._exit.push_async_callback(toolset.close)
            self.registry.add_shared(toolset)

    async def close(self) -> None:
        try:
            await self._exit.aclose()
        finally:
            await self.executor.sandbox.prepared.close()  # no jail outlives the service
