"""``roost approvals list|show|approve|deny|edit``: decide on risky tool calls from a
terminal, on this machine's store or a server's (``--url``; see :mod:`roost.cli.target`).

A decision on the local store acts like one over HTTP: the agent run it paused is
re-queued once none of its approvals is pending, and continues in whichever process
executes runs (the server, or ``roost worker``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, format_time
from roost.cli.output import JsonOption, print_json
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, TenantOption, act, tenant_id

if TYPE_CHECKING:
    from roost.platform import Roost
    from roost.tools.approvals import ApprovalStatus, Decision

app = typer.Typer(help="Approve or deny tool calls that wait for a human.", no_args_is_help=True)
ACTOR = "cli"
STATUSES: dict[str | None, ApprovalStatus] = {
    "pending": "pending",
    "approved": "approved",
    "denied": "denied",
}


@app.command("list")
def list_approvals(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="pending, approved or denied")] = "pending",
    all_: Annotated[bool, typer.Option("--all", help="Every status")] = False,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List approvals (pending ones by default), newest first."""
    if status not in STATUSES:
        raise typer.BadParameter("status must be pending, approved or denied")
    chosen: ApprovalStatus | None = None if all_ else STATUSES[status]

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        found = await kernel.tools.approvals.list(await tenant_id(kernel, tenant), status=chosen)
        return [approval.to_dict() for approval in found]

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.get("/v1/approvals", status=chosen)["data"])

    approvals = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(approvals)
        return
    # One block per approval (no table): ids and tool names stay whole for copy and grep.
    for approval in approvals:
        _print(approval)
    if not approvals:
        console.print("no approvals")


@app.command("show")
def show(
    ctx: typer.Context,
    approval_id: str,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One approval with its arguments."""

    async def local(kernel: Roost) -> dict[str, Any]:
        found = await kernel.tools.approvals.get(await tenant_id(kernel, tenant), approval_id)
        return found.to_dict()

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.get(f"/v1/approvals/{approval_id}"))

    approval = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(approval)
    else:
        _print(approval)


def _print(approval: dict[str, Any]) -> None:
    console.print(
        f"{approval['id']}  {approval['status']:<8}  {approval['tool']}  risk={approval['risk']}"
        f"  by={approval['requested_by']}  at={format_time(approval['created_at'])}",
        highlight=False, soft_wrap=True, markup=False,
    )  # fmt: skip
    console.print(f"    arguments: {json.dumps(approval['arguments'])}",
                  highlight=False, soft_wrap=True, markup=False)  # fmt: skip


def _decide(
    ctx: typer.Context,
    approval_id: str,
    decision: Decision,
    options: tuple[str | None, str | None, str | None, str | None],
    arguments: dict[str, Any] | None = None,
) -> None:
    tenant, reason, url, api_key = options

    async def local(kernel: Roost) -> dict[str, Any]:
        owner = await tenant_id(kernel, tenant)
        approval = await kernel.tools.executor.decide(
            owner, approval_id, decision, decided_by=ACTOR, reason=reason, arguments=arguments
        )

        async def is_pending(other_id: str) -> bool:
            return (await kernel.tools.approvals.get(owner, other_id)).status == "pending"

        if approval.run_id is not None:
            await kernel.runs.resume_if_decided(owner, approval.run_id, is_pending)
        return approval.to_dict()

    def remote(api: Api) -> dict[str, Any]:
        body = {"decision": decision, "reason": reason, "arguments": arguments}
        return dict(api.post(f"/v1/approvals/{approval_id}", body))

    approval = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    console.print(f"{approval['id']}: {approval['status']} ({approval['tool']})", markup=False)


ReasonOption = Annotated[str | None, typer.Option(help="Why (told to the agent on deny)")]


@app.command()
def approve(
    ctx: typer.Context,
    approval_id: str,
    reason: ReasonOption = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Approve a pending call exactly as requested."""
    _decide(ctx, approval_id, "approve", (tenant, reason, url, api_key))


@app.command()
def deny(
    ctx: typer.Context,
    approval_id: str,
    reason: ReasonOption = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Deny a pending call; the agent gets the reason as the tool's error."""
    _decide(ctx, approval_id, "deny", (tenant, reason, url, api_key))


@app.command()
def edit(
    ctx: typer.Context,
    approval_id: str,
    arguments: Annotated[str, typer.Option(help="The arguments to approve instead, as JSON")],
    reason: ReasonOption = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Approve the call with edited arguments."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise typer.BadParameter("arguments must be a JSON object")
    _decide(ctx, approval_id, "edit", (tenant, reason, url, api_key), parsed)
