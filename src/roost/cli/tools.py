"""``roost tools list|run``: the tool layer from a terminal, under the same executor."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from roost.cli.common import console, settings_from, with_platform
from roost.errors import NotFound
from roost.security import DEFAULT_TENANT

if TYPE_CHECKING:
    from roost.platform import Platform
    from roost.tools.base import Tool
    from roost.tools.executor import ToolResult
    from roost.tools.permissions import Caller
    from roost.tools.service import ToolService

app = typer.Typer(help="List and run tools.", no_args_is_help=True)
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name")]


async def _open_tools(platform: Platform) -> ToolService:
    # Imported here: the tool service loads the MCP SDK, which other commands never need.
    from roost.tools.service import ToolService

    return await ToolService.open(platform)


async def _caller(platform: Platform, tenant: str) -> Caller:
    from roost.tools.permissions import Caller

    owner = await platform.tenants.find_by_name(tenant)
    if owner is None:
        raise NotFound(f"tenant {tenant!r} not found")
    return Caller(tenant_id=owner.id, actor="cli")


@app.command("list")
def list_tools(ctx: typer.Context, tenant: TenantOption = DEFAULT_TENANT) -> None:
    """Every tool with its risk level (configured MCP servers included)."""

    async def work(platform: Platform) -> list[Tool]:
        service = await _open_tools(platform)
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
        from roost.tools.executor import ToolCall

        service = await _open_tools(platform)
        try:
            call = ToolCall(name, parsed, approval_id=approval)
            return await service.executor.execute(await _caller(platform, tenant), call)
        finally:
            await service.close()

    result = with_platform(settings_from(ctx), work)
    typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    if result.status != "ok":
        raise typer.Exit(1)
