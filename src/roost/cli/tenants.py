"""``roost tenants create|list``: always on this machine's store (storage core only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from roost.cli.common import console, format_time, settings_from, with_platform
from roost.cli.output import JsonOption, print_json, print_table, table

if TYPE_CHECKING:
    from roost.platform import Platform
    from roost.security.tenants import Tenant

app = typer.Typer(
    help="Manage tenants (isolated groups of keys, agents and data).", no_args_is_help=True
)


@app.command()
def create(ctx: typer.Context, name: str, as_json: JsonOption = False) -> None:
    """Create a tenant."""

    async def work(platform: Platform) -> Tenant:
        tenant = await platform.tenants.create(name)
        await platform.audit.record(tenant.id, "cli", "tenant.create", target=tenant.id)
        return tenant

    tenant = with_platform(settings_from(ctx), work)
    if as_json:
        print_json(_tenant_json(tenant))
        return
    console.print(f"created tenant [bold]{tenant.name}[/] ({tenant.id})")


@app.command("list")
def list_tenants(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List tenants."""

    async def work(platform: Platform) -> list[Tenant]:
        return await platform.tenants.list()

    rows = [_tenant_json(t) for t in with_platform(settings_from(ctx), work)]
    if as_json:
        print_json(rows)
        return
    shown = table("name", "id", "created", ids=("name", "id"))
    for row in rows:
        shown.add_row(row["name"], row["id"], format_time(row["created_at"]))
    print_table(shown)


def _tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "created_at": tenant.created_at,
            "disabled_at": tenant.disabled_at}  # fmt: skip
