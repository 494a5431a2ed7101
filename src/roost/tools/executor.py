"""The one path every tool call takes: look up → validate → permit → approve → run → audit.

Agents (through the runtime), ``POST /v1/tools/{name}/execute``, the MCP server and the
CLI all call :meth:`ToolExecutor.execute`; nothing else runs a tool handler. Every call,
refused or not, leaves one audit event with a hash of its arguments (never the arguments
themselves, which may hold secrets).
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from roost.errors import Conflict, Forbidden, InvalidRequest, NotFound
from roost.observe.logging import get_logger
from roost.observe.tracing import get_tracer
from roost.tools.approvals import Approval, ApprovalStore, Decision, call_hash
from roost.tools.audit import AuditSink
from roost.tools.base import RiskLevel, Tool, ToolFailure
from roost.tools.context import ToolContext
from roost.tools.metrics import TOOL_CALLS, TOOL_DURATION
from roost.tools.netguard import NetworkPolicy
from roost.tools.paths import Workspace, check_path_text
from roost.tools.permissions import PATH_ARGUMENTS, Caller, PermissionPolicy
from roost.tools.registry import ToolRegistry
from roost.tools.sandbox import Sandbox
from roost.tools.separation import SelfApprovalPolicy, check_decider

log = get_logger("roost.tools")
_tracer = get_tracer("roost.tools")
Status = Literal["ok", "error", "pending_approval"]
WorkspaceFor = Callable[[Caller], Workspace]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call a model (or a client) asked for."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    call_id: str | None = None
    approval_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome in the shape of ``POST /v1/tools/{name}/execute``."""

    status: Status
    output: Any = None
    error_type: str | None = None
    error_message: str | None = None
    approval_id: str | None = None
    call_id: str | None = None
    duration_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        error = (
            {"type": self.error_type, "message": self.error_message}
            if self.status == "error"
            else None
        )
        return {
            "status": self.status,
            "output": self.output,
            "error": error,
            "approval_id": self.approval_id,
            "call_id": self.call_id,
            "duration_ms": self.duration_ms,
        }


def _error(call: ToolCall, kind: str, message: str) -> ToolResult:
    return ToolResult("error", error_type=kind, error_message=message, call_id=call.call_id)


class ToolExecutor:
    """Runs tool calls under permissions, approvals, timeouts and the sandbox, and audits them."""

    def __init__(
        self,
        registry: ToolRegistry,
        permissions: PermissionPolicy,
        approvals: ApprovalStore,
        audit: AuditSink,
        *,
        sandbox: Sandbox,
        workspace_for: WorkspaceFor,
        network: NetworkPolicy | None = None,
        approval_risk: RiskLevel = RiskLevel.DESTRUCTIVE,
        max_parallel: int = 4,
        self_approval: SelfApprovalPolicy | None = None,
    ) -> None:
        self.registry = registry
        self.permissions = permissions
        self.approvals = approvals
        self.audit = audit
        self.sandbox = sandbox
        self.workspace_for = workspace_for
        self.network = network or NetworkPolicy()
        self.approval_risk = approval_risk
        self.max_parallel = max_parallel
        self.self_approval = self_approval or SelfApprovalPolicy()

    async def list_tools(self, caller: Caller) -> list[Tool]:
        """The tools ``caller``'s role allows (by name pattern and risk)."""
        role = self.permissions.role_of(caller)
        tools = await self.registry.list_tools(caller.tenant_id)
        return [
            t
            for t in tools
            if role.max_risk.at_least(t.risk)
            and any(fnmatch.fnmatchcase(t.name, p) for p in role.tools)
        ]

    async def execute_many(self, caller: Caller, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Independent calls of one model turn, at most ``max_parallel`` at a time, in order."""
        gate = asyncio.Semaphore(self.max_parallel)

        async def bounded(call: ToolCall) -> ToolResult:
            async with gate:
                return await self.execute(caller, call)

        return list(await asyncio.gather(*(bounded(call) for call in calls)))

    async def execute(self, caller: Caller, call: ToolCall) -> ToolResult:
        """Run one call; refusals and failures come back as ``status="error"`` results."""
        with _tracer.start_as_current_span(f"execute_tool {call.name}") as span:
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", call.name)
            if call.call_id:
                span.set_attribute("gen_ai.tool.call.id", call.call_id)
            span.set_attribute("roost.tenant_id", caller.tenant_id)
            result = await self._execute(caller, call)
            span.set_attribute("roost.tool.status", result.status)
            if result.error_type:
                span.set_attribute("error.type", result.error_type)
        TOOL_CALLS.labels(call.name, result.status).inc()
        TOOL_DURATION.labels(call.name).observe(result.duration_ms / 1000)
        return result

    async def _execute(self, caller: Caller, call: ToolCall) -> ToolResult:
        started = time.monotonic()
        tool: Tool | None = None
        arguments: dict[str, Any] = dict(call.arguments)
        try:
            tool = await self.registry.get(caller.tenant_id, call.name)
            arguments = tool.validate_arguments(call.arguments)
            self.permissions.check(caller, tool, arguments)
            _preflight(tool, arguments)
            gate = None
            # A call that names an approval must match it, whatever the tool's risk.
            if tool.risk.at_least(self.approval_risk) or call.approval_id is not None:
                gate = await self._approval_gate(caller, call, tool, arguments)
            result = gate or await self._run(caller, call, tool, arguments)
        except NotFound as exc:
            result = _error(call, "unknown_tool", exc.message)
        except InvalidRequest as exc:
            result = _error(call, "invalid_arguments", exc.message)
        except Forbidden as exc:
            result = _error(call, "forbidden", exc.message)
        except Conflict as exc:
            result = _error(call, "approval_invalid", exc.message)
        except ToolFailure as exc:
            result = _error(call, exc.type, exc.message)
        finally:
            if call.approval_id is not None:
                # A jail prepared for this approval that the call did not use (denied,
                # expired, refused, or a tool that ran no command) never runs anything.
                await self.sandbox.prepared.discard(call.approval_id, caller.tenant_id)
        result = _with_duration(result, started)
        await self._audit(caller, call, tool, arguments, result)
        return result

    async def _approval_gate(
        self, caller: Caller, call: ToolCall, tool: Tool, arguments: dict[str, Any]
    ) -> ToolResult | None:
        """None when an approval covers this call; else a pending or denied result."""
        if call.approval_id is None:
            approval = await self.approvals.request(
                caller.tenant_id,
                tool.name,
                arguments,
                risk=tool.risk.value,
                requested_by=caller.actor,
                requested_for=caller.on_behalf_of,
                requester_role=caller.role,
                agent_id=caller.agent_id,
                run_id=caller.run_id,
                call_id=call.call_id,
            )
            await self._prepare(caller, call, tool, arguments, approval)
            return ToolResult("pending_approval", approval_id=approval.id, call_id=call.call_id)
        try:
            approval = await self.approvals.consume(
                caller.tenant_id,
                call.approval_id,
                tool.name,
                arguments,
                agent_id=caller.agent_id,
                run_id=caller.run_id,
            )
        except NotFound as exc:
            raise Conflict(exc.message) from exc
        if approval.status == "denied":
            why = f": {approval.reason}" if approval.reason else ""
            return ToolResult(
                "error",
                error_type="approval_denied",
                error_message=f"{approval.decided_by} denied this call{why}",
                approval_id=approval.id,
                call_id=call.call_id,
            )
        return None

    async def prepare(self, caller: Caller, approval: Approval) -> None:
        """Start what the call ``approval`` asks for will need (a jail waiting for its
        command), so the decision only releases it; for approvals asked outside
        :meth:`execute` (the coder's own rules). The call is checked as :meth:`execute`
        would check it; anything refused or failing is simply not prepared."""
        if approval.status != "pending" or approval.tenant_id != caller.tenant_id:
            return
        try:
            tool = await self.registry.get(caller.tenant_id, approval.tool)
            arguments = tool.validate_arguments(approval.arguments)
            self.permissions.check(caller, tool, arguments)
            _preflight(tool, arguments)
        except (NotFound, InvalidRequest, Forbidden, ToolFailure):
            return
        call = ToolCall(approval.tool, arguments, approval.call_id, approval.id)
        await self._prepare(caller, call, tool, arguments, approval)

    async def _prepare(
        self, caller: Caller, call: ToolCall, tool: Tool, arguments: dict[str, Any],
        approval: Approval,
    ) -> None:  # fmt: skip
        if tool.prepare is None:
            return
        ttl_s = (approval.expires_at - time.time() * 1000) / 1000
        context = replace(self._context(caller, call), approval_id=approval.id,
                          approval_ttl_s=ttl_s)  # fmt: skip
        try:
            await tool.prepare(context, arguments)
        except Exception as exc:  # the call starts cold when decided; its own checks then
            log.info("not prepared", tool=tool.name, reason=f"{type(exc).__name__}: {exc}")

    def _context(self, caller: Caller, call: ToolCall) -> ToolContext:
        return ToolContext(
            tenant_id=caller.tenant_id,
            actor=caller.actor,
            workspace=self.workspace_for(caller),
            sandbox=self.sandbox,
            network=self.network,
            agent_id=caller.agent_id,
            run_id=caller.run_id,
            call_id=call.call_id,
            # Set only past the approval gate: the call consumed this approval.
            approval_id=call.approval_id,
        )

    async def _run(
        self, caller: Caller, call: ToolCall, tool: Tool, arguments: dict[str, Any]
    ) -> ToolResult:
        context = self._context(caller, call)
        try:
            output = await asyncio.wait_for(tool.handler(context, arguments), tool.timeout_s)
        except ToolFailure as exc:
            return _error(call, exc.type, exc.message)
        except TimeoutError:
            return _error(
                call, "timeout", f"{tool.name} did not finish within {tool.timeout_s:g} s"
            )
        except Exception as exc:  # a tool's own bug must not take the agent down
            log.exception("tool crashed", tool=tool.name)
            return _error(call, "tool_crashed", f"{tool.name} failed: {type(exc).__name__}: {exc}")
        return ToolResult("ok", output=output, call_id=call.call_id)

    async def resume(
        self, caller: Caller, approval_id: str, call_id: str | None = None
    ) -> ToolResult:
        """Execute the call an approval covers, with its (possibly edited) arguments."""
        approval = await self.approvals.get(caller.tenant_id, approval_id)
        return await self.execute(
            caller,
            ToolCall(approval.tool, approval.arguments, call_id or approval.call_id, approval.id),
        )

    async def decide(
        self,
        tenant_id: str,
        approval_id: str,
        decision: Decision,
        *,
        decided_by: str,
        decider_role: str | None = None,
        reason: str | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> Approval:
        """Record a human decision; edited arguments are validated against the tool first.

        Separation of duties (:mod:`roost.tools.separation`) is checked first; a refusal is
        audited too. The decision's audit record is written before this returns: if the
        append fails the caller gets the error and does not resume the run.
        """
        current = await self.approvals.get(tenant_id, approval_id)
        try:
            await check_decider(self.self_approval, current, decision, decided_by, decider_role)
        except Forbidden as exc:
            await self._audit_decision(current, decision, decided_by, decider_role, reason,
                                       outcome="denied", refusal=exc.message)  # fmt: skip
            raise
        if decision == "edit":
            if arguments is None:
                raise InvalidRequest("an edit needs the new arguments", param="arguments")
            tool = await self.registry.get(tenant_id, current.tool)
            arguments = tool.validate_arguments(arguments)
        approval = await self.approvals.decide(
            tenant_id, approval_id, decision, decided_by=decided_by, decider_role=decider_role,
            reason=reason, arguments=arguments,
        )  # fmt: skip
        await self._audit_decision(approval, decision, decided_by, decider_role, reason)
        if approval.status == "denied":
            await self.sandbox.prepared.discard(approval.id, approval.tenant_id)  # runs nothing
        return approval

    async def _audit_decision(
        self, approval: Approval, decision: Decision, decided_by: str, decider_role: str | None,
        reason: str | None, *, outcome: str = "ok", refusal: str | None = None,
    ) -> None:  # fmt: skip
        details: dict[str, Any] = {
            "tool": approval.tool, "call_hash": approval.call_hash, "risk": approval.risk,
            "requested_by": approval.requested_by, "requested_for": approval.requested_for,
            "requester_role": approval.requester_role, "decider_role": decider_role,
            "reason": reason,
        }  # fmt: skip
        if refusal is not None:
            details["refusal"] = refusal
        await self.audit.record(
            approval.tenant_id, decided_by, f"tool.approval.{decision}", target=approval.id,
            outcome=outcome, role=decider_role,
            details={k: v for k, v in details.items() if v is not None},
        )  # fmt: skip

    async def _audit(
        self,
        caller: Caller,
        call: ToolCall,
        tool: Tool | None,
        arguments: Mapping[str, Any],
        result: ToolResult,
    ) -> None:
        details: dict[str, Any] = {
            "call_hash": call_hash(call.name, arguments),
            "duration_ms": result.duration_ms,
        }
        for key, value in (
            ("risk", tool.risk.value if tool else None),
            ("agent_id", caller.agent_id),
            ("run_id", caller.run_id),
            ("on_behalf_of", caller.on_behalf_of),
            ("call_id", call.call_id),
            ("approval_id", result.approval_id or call.approval_id),
            ("error_type", result.error_type),
        ):
            if value is not None:
                details[key] = value
        await self.audit.record(
            caller.tenant_id,
            caller.actor,
            "tool.call",
            target=call.name,
            outcome=result.status,
            details=details,
            role=caller.role,
        )


def _preflight(tool: Tool, arguments: Mapping[str, Any]) -> None:
    """Refuse hostile workspace paths of built-in tools before anyone is asked to approve them."""
    if "mcp" in tool.tags:  # an MCP server's "path" means whatever that server says
        return
    for name in PATH_ARGUMENTS:
        value = arguments.get(name)
        for path in value if isinstance(value, list) else [value] if value is not None else []:
            check_path_text(str(path))


def _with_duration(result: ToolResult, started: float) -> ToolResult:
    return replace(result, duration_ms=int((time.monotonic() - started) * 1000))
