"""``roost approvals list|approve|deny|edit``: decide on risky tool calls from a terminal."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, format_time, settings_from, with_platform
from roost.errors import NotFound
from roost.security import DEFAULT_TENANT

if TYPE_CHECKING:
    from roost.platform import Platform
    from roost.tools.approvals import Approval, ApprovalStatus, Decision
    from roost.tools.service import ToolService

app = typer.Typer(help="Approve or deny tool calls that wait for a human.", no_args_is_help=True)
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name")]
ACTOR = "cli"
STATUSES: dict[str | None, ApprovalStatus] = {
    "pending": "pending",
    "approved": "approved",
    "denied": "denied",
}


async def _tool_service(platform: Platform) -> ToolService:
    # Imported here: the tool service loads the MCP SDK, which other commands never need.
    from roost.tools.service import ToolService

    return await ToolService.open(platform, connect_mcp=False)


async def _tenant_id(platform: Platform, name: str) -> str:
    tenant = await platform.tenants.find_by_name(name)
    if tenant is None:
        raise NotFound(f"tenant {name!r} not found")
    return tenant.id


@app.command("list")
def list_approvals(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="pending, approved or denied")] = "pending",
    all_: Annotated[bool, typer.Option("--all", help="Every status")] = False,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """List approvals (pending ones by default)."""
    if status not in STATUSES:
        raise typer.BadParameter("status must be pending, approved or denied")
    chosen: ApprovalStatus | None = None if all_ else STATUSES[status]

    async def work(platform: Platform) -> list[Approval]:
        service = await _tool_service(platform)
        return await service.approvals.list(await _tenant_id(platform, tenant), status=chosen)

    approvals = with_platform(settings_from(ctx), work)
    # One line per approval (no table): ids and tool names stay whole for copy and grep.
    for approval in approvals:
        console.print(
            f"{approval.id}  {approval.status:<8}  {approval.tool}  risk={approval.risk}"
            f"  by={approval.requested_by}  at={format_time(approval.created_at)}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"    arguments: {json.dumps(approval.arguments)}", highlight=False, soft_wrap=True
        )
    if not approvals:
        console.print("no approvals")


def _decide(
    ctx: typer.Context,
    approval_id: str,
    decision: Decision,
    tenant: str,
    reason: str | None,
    arguments: dict[str, Any] | None = None,
) -> None:
    async def work(platform: Platform) -> Approval:
        service = await _tool_service(platform)
        return await service.executor.decide(
            await _tenant_id(platform, tenant),
            approval_id,
            decision,
            decided_by=ACTOR,
            reason=reason,
            arguments=arguments,
        )

    approval = with_platform(settings_from(ctx), work)
    console.print(f"{approval.id}: {approval.status} ({approval.tool})")


@app.command()
def approve(
    ctx: typer.Context,
    approval_id: str,
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Approve a pending call exactly as requested."""
    _decide(ctx, approval_id, "approve", tenant, reason)


@app.command()
def deny(
    ctx: typer.Context,
    approval_id: str,
    reason: Annotated[str | None, typer.Option(help="Told to the agent")] = None,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Deny a pending call; the agent gets the reason as the tool's error."""
    _decide(ctx, approval_id, "deny", tenant, reason)


@app.command()
def edit(
    ctx: typer.Context,
    approval_id: str,
    arguments: Annotated[str, typer.Option(help="The arguments to approve instead, as JSON")],
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Approve the call with edited arguments."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise typer.BadParameter("arguments must be a JSON object")
    _decide(ctx, approval_id, "edit", tenant, reason, parsed)
