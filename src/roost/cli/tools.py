"""``roost tools list|run``: the tool layer from a terminal, under the same executor."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from roost.cli.common import console, settings_from, with_platform
from roost.errors import NotFound
from roost.platform import Platform
from roost.security.tenants import DEFAULT_TENANT
from roost.tools.base import Tool
from roost.tools.executor import ToolCall, ToolResult
from roost.tools.permissions import Caller
from roost.tools.service import ToolService

app = typer.Typer(help="List and run tools.", no_args_is_help=True)
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name")]


async def _caller(platform: Platform, tenant: str) -> Caller:
    owner = await platform.tenants.find_by_name(tenant)
    if owner is None:
        raise NotFound(f"tenant {tenant!r} not found")
    return Caller(tenant_id=owner.id, actor="cli")


@app.command("list")
def list_tools(ctx: typer.Context, tenant: TenantOption = DEFAULT_TENANT) -> None:
    """Every tool with its risk level (configured MCP servers included)."""

    async def work(platform: Platform) -> list[Tool]:
        service = await ToolService.open(platform)
        try:
            return await service.executor.list_tools(await _caller(platform, tenant))
        finally:
            await service.close()

    table = Table("name", "risk", "description")
    for tool in with_platform(settings_from(ctx), work):
        table.add_row(tool.name, tool.risk.value, tool.description.splitlines()[0][:70])
    console.print(table)


@app.command()
def run(
    ctx: typer.Context,
    name: str,
    arguments: Annotated[str, typer.Option("--args", "-a", help="Arguments as JSON")] = "{}",
    approval: Annotated[str | None, typer.Option(help="Approval id covering this call")] = None,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Run one tool and print its result as JSON (exit 1 unless status is ok)."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--args is not JSON: {exc}") from exc

    async def work(platform: Platform) -> ToolResult:
        service = await ToolService.open(platform)
        try:
            call = ToolCall(name, parsed, approval_id=approval)
            return await service.executor.execute(await _caller(platform, tenant), call)
        finally:
            await service.close()

    result = with_platform(settings_from(ctx), work)
    typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    if result.status != "ok":
        raise typer.Exit(1)
