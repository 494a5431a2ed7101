"""Who may call which tool: RBAC roles plus short-lived capability tokens for agents.

A **role** bounds a caller: which tools (glob patterns), up to which risk level, which
paths (arguments named ``path``, ``paths``, ``cwd``), which hosts (``url``) and which
programs (``argv[0]``, within the sandbox's own allowlist).

A **capability** is what the agent runtime mints for one run of one agent: which tools,
with which argument patterns, until when. It is an HMAC-signed token, so a worker on
another node can verify it with the shared secret and a model cannot forge or widen one.
Agent calls need both: the agent's role *and* a capability that covers the exact call.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from roost.errors import Forbidden
from roost.storage import now_ms
from roost.tools.base import RiskLevel, Tool

PATH_ARGUMENTS = ("path", "paths", "cwd")


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    max_risk: RiskLevel
    tools: tuple[str, ...] = ("*",)
    paths: tuple[str, ...] = ("*",)
    hosts: tuple[str, ...] = ("*",)
    executables: tuple[str, ...] = ("*",)  # argv[0] of command tools, on top of the sandbox's
    may_approve: bool = False


DEFAULT_ROLES: dict[str, Role] = {
    "reader": Role("reader", RiskLevel.READ),
    "writer": Role("writer", RiskLevel.WRITE),
    "developer": Role("developer", RiskLevel.DESTRUCTIVE),
    "admin": Role("admin", RiskLevel.DESTRUCTIVE, may_approve=True),
}


class Authenticated(Protocol):
    """A caller resolved from credentials (``roost.security``'s ``Principal``)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        ...

    @property
    def role(self) -> str:
        """Its tenant role: owner, member or viewer."""
        ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling a tool. Agents carry the capability token their runtime minted."""

    tenant_id: str
    actor: str  # as the audit log names it: "key:<id>", "agent:<id>", "cli", "mcp:key:<id>"
    agent_id: str | None = None
    run_id: str | None = None
    capability: str | None = None
    role: str | None = None  # the principal's tenant role (owner/member/viewer), when known
    # For an agent: the principal who started the run. Separation of duties treats the
    # run's calls as that principal's requests.
    on_behalf_of: str | None = None

    @classmethod
    def from_principal(cls, principal: Authenticated) -> Caller:
        """A direct caller (HTTP, MCP): the API key's tenant, audited as that key."""
        return cls(tenant_id=principal.tenant_id, actor=principal.actor, role=str(principal.role))


@dataclass(frozen=True, slots=True)
class Capability:
    """What one run of one agent may call; ``arguments`` maps an argument to a glob."""

    tenant_id: str
    agent_id: str
    run_id: str
    tools: tuple[str, ...]
    expires_at: int
    arguments: Mapping[str, str] = field(default_factory=dict)

    def covers(self, tool_name: str, arguments: Mapping[str, Any]) -> str | None:
        """None when the call is covered, else why not."""
        if not any(fnmatch.fnmatchcase(tool_name, p) for p in self.tools):
            return f"the capability does not cover tool {tool_name!r}"
        for name, pattern in self.arguments.items():
            if name not in arguments:
                continue
            for value in _values(arguments[name]):
                if not fnmatch.fnmatchcase(value, pattern):
                    return f"argument {name}={value!r} is outside the capability ({pattern!r})"
        return None


class CapabilityMinter:
    """Mints and verifies capability tokens: ``base64(json).base64(hmac-sha256)``."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("capability secret must be at least 16 bytes")
        self._secret = secret

    def mint(
        self,
        *,
        tenant_id: str,
        agent_id: str,
        run_id: str,
        tools: tuple[str, ...],
        arguments: Mapping[str, str] | None = None,
        ttl_s: float = 900.0,
    ) -> str:
        capability = Capability(
            tenant_id, agent_id, run_id, tools, now_ms() + int(ttl_s * 1000), dict(arguments or {})
        )
        payload = json.dumps(asdict(capability), sort_keys=True, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def verify(self, token: str) -> Capability:
        """The capability in ``token``; :class:`Forbidden` if forged, malformed or expired."""
        try:
            body, signature = token.split(".")
            payload = _unb64(body)
            valid = hmac.compare_digest(_unb64(signature), self._sign(payload))
        except ValueError as exc:
            raise Forbidden("malformed capability token") from exc
        if not valid:
            raise Forbidden("capability token signature is invalid")
        data = json.loads(payload)
        capability = Capability(**{**data, "tools": tuple(data["tools"])})
        if capability.expires_at <= now_ms():
            raise Forbidden("capability token has expired")
        return capability

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()


class PermissionPolicy:
    """Roles by name, the role of each subject, and the checks every call passes."""

    def __init__(
        self,
        minter: CapabilityMinter,
        *,
        roles: Mapping[str, Role] | None = None,
        bindings: Mapping[str, str] | None = None,
        default_role: str = "developer",
        agent_role: str = "developer",
    ) -> None:
        self.minter = minter
        self.roles = {**DEFAULT_ROLES, **(roles or {})}
        self.bindings = dict(bindings or {})
        for role in (default_role, agent_role, *self.bindings.values()):
            if role not in self.roles:
                raise ValueError(f"unknown role {role!r}")
        self.default_role = default_role
        self.agent_role = agent_role

    def role_of(self, caller: Caller) -> Role:
        """A subject's bound role (``tenant_id/actor`` or ``actor``), else the default."""
        name = self.bindings.get(f"{caller.tenant_id}/{caller.actor}") or self.bindings.get(
            caller.actor
        )
        if name is None:
            name = self.agent_role if caller.agent_id else self.default_role
        return self.roles[name]

    def check(self, caller: Caller, tool: Tool, arguments: Mapping[str, Any]) -> Role:
        """Raise :class:`Forbidden` with the reason unless ``caller`` may make this call."""
        role = self.role_of(caller)
        if not any(fnmatch.fnmatchcase(tool.name, p) for p in role.tools):
            raise Forbidden(f"role {role.name!r} may not call {tool.name!r}")
        if not role.max_risk.at_least(tool.risk):
            raise Forbidden(
                f"role {role.name!r} may call tools up to risk {role.max_risk.value!r};"
                f" {tool.name!r} is {tool.risk.value!r}"
            )
        for name in PATH_ARGUMENTS:
            for value in _values(arguments.get(name)):
                if not any(fnmatch.fnmatchcase(value, p) for p in role.paths):
                    raise Forbidden(f"role {role.name!r} may not touch path {value!r}")
        argv = arguments.get("argv")
        if isinstance(argv, list) and argv:
            program = str(argv[0])
            if not any(fnmatch.fnmatchcase(program, p) for p in role.executables):
                raise Forbidden(f"role {role.name!r} may not run {program!r}")
        url = arguments.get("url")
        if isinstance(url, str):
            host = (urlsplit(url).hostname or "").lower()
            if not any(fnmatch.fnmatchcase(host, p) for p in role.hosts):
                raise Forbidden(f"role {role.name!r} may not reach host {host!r}")
        if caller.agent_id is not None:
            self._check_capability(caller, tool, arguments)
        return role

    def _check_capability(self, caller: Caller, tool: Tool, arguments: Mapping[str, Any]) -> None:
        if caller.capability is None:
            raise Forbidden("agent tool calls need a capability token from the runtime")
        capability = self.minter.verify(caller.capability)
        if (capability.tenant_id, capability.agent_id, capability.run_id) != (
            caller.tenant_id,
            caller.agent_id,
            caller.run_id,
        ):
            raise Forbidden("the capability token belongs to another tenant, agent or run")
        reason = capability.covers(tool.name, arguments)
        if reason is not None:
            raise Forbidden(reason)


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc
