"""``roost tenants create|list``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from roost.cli.common import console, format_time, settings_from, with_platform

if TYPE_CHECKING:
    from roost.platform import Platform
    from roost.security.tenants import Tenant

app = typer.Typer(
    help="Manage tenants (isolated groups of keys, agents and data).", no_args_is_help=True
)


@app.command()
def create(ctx: typer.Context, name: str) -> None:
    """Create a tenant."""

    async def work(platform: Platform) -> Tenant:
        tenant = await platform.tenants.create(name)
        await platform.audit.record(tenant.id, "cli", "tenant.create", target=tenant.id)
        return tenant

    tenant = with_platform(settings_from(ctx), work)
    console.print(f"created tenant [bold]{tenant.name}[/] ({tenant.id})")


@app.command("list")
def list_tenants(ctx: typer.Context) -> None:
    """List tenants."""

    async def work(platform: Platform) -> list[Tenant]:
        return await platform.tenants.list()

    table = Table("name", "id", "created")
    for tenant in with_platform(settings_from(ctx), work):
        table.add_row(tenant.name, tenant.id, format_time(tenant.created_at))
    console.print(table)
