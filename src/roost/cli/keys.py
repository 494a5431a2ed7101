"""``roost keys create|list|role|rotate|revoke``: API keys in the same store the server reads.

Always on this machine's store, opening only the kernel's storage core (the same
operations over HTTP are under ``/admin/tenants/{id}/keys``). A key has a role in its
tenant (owner, member, viewer) and may be a platform operator (``--operator``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, fail, format_time, settings_from, with_platform
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.errors import NotFound
from roost.security import DEFAULT_TENANT
from roost.security.principal import ROLE_NAMES, Role

if TYPE_CHECKING:
    from roost.platform import Platform
    from roost.security.api_keys import ApiKey
    from roost.security.tenants import Tenant

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name")]
RoleOption = Annotated[
    str, typer.Option("--role", "-r", help=f"Role in the tenant: {', '.join(ROLE_NAMES)}")
]


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        fail(f"unknown role {value!r}: use one of {', '.join(ROLE_NAMES)}", code=2)


async def _tenant(platform: Platform, name: str) -> Tenant:
    tenant = await platform.tenants.find_by_name(name)
    if tenant is None:
        raise NotFound(f"tenant {name!r} not found (create it with: roost tenants create {name})")
    return tenant


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="A label for the key")] = "cli",
    tenant: TenantOption = DEFAULT_TENANT,
    role: RoleOption = "owner",
    operator: Annotated[
        bool, typer.Option("--operator", help="A platform operator key (models, tenants, caches)")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once; only a hash is stored."""
    chosen = _role(role)

    async def work(platform: Platform) -> tuple[ApiKey, str]:
        owner = await _tenant(platform, tenant)
        key, plaintext = await platform.api_keys.create(
            owner.id, name, role=chosen, operator=operator
        )
        await platform.audit.record(
            owner.id, "cli", "api_key.create", target=key.id,
            details={"role": chosen.value, "operator": operator},
        )  # fmt: skip
        return key, plaintext

    key, plaintext = with_platform(settings_from(ctx), work)
    if as_json:
        print_json(_key_json(key, tenant) | {"key": plaintext})
        return
    power = f"{key.role.value}{' and operator' if key.operator else ''}"
    console.print(
        f"created key [bold]{key.id}[/] ({power}) for tenant {tenant}; it is shown only now:"
    )
    typer.echo(plaintext)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant")] = None,
    as_json: JsonOption = False,
) -> None:
    """List keys (never their secrets)."""

    async def work(platform: Platform) -> tuple[list[ApiKey], dict[str, str]]:
        tenant_id = (await _tenant(platform, tenant)).id if tenant else None
        names = {t.id: t.name for t in await platform.tenants.list()}
        return await platform.api_keys.list(tenant_id), names

    keys, tenant_names = with_platform(settings_from(ctx), work)
    rows = [_key_json(key, tenant_names.get(key.tenant_id, key.tenant_id)) for key in keys]
    if as_json:
        print_json(rows)
        return
    shown = table("id", "name", "tenant", "role", "status", "created", "last used")
    for row in rows:
        role_text = row["role"] + (" +operator" if row["operator"] else "")
        shown.add_row(row["id"], row["name"], row["tenant"], role_text, row["status"],
                      format_time(row["created_at"]), format_time(row["last_used_at"]))  # fmt: skip
    print_table(shown)
    if not rows:
        console.print("no keys (make one: roost keys create)")


def _key_json(key: ApiKey, tenant_name: str) -> dict[str, Any]:
    status = "revoked" if key.revoked_at else ("active" if key.is_active else "expired")
    return {
        "id": key.id, "name": key.name, "tenant_id": key.tenant_id, "tenant": tenant_name,
        "role": key.role.value, "operator": key.operator, "status": status, "created_at": key.created_at, "expires_at": key.expires_at,
        "revoked_at": key.revoked_at, "last_used_at": key.last_used_at,
    }  # fmt: skip


@app.command()
def revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key by id; requests with it are refused from now on."""

    async def work(platform: Platform) -> ApiKey:
        key = await platform.api_keys.revoke(key_id)
        await platform.audit.record(key.tenant_id, "cli", "api_key.revoke", target=key.id)
        return key

    key = with_platform(settings_from(ctx), work)
    console.print(f"revoked key [bold]{key.id}[/]")


@app.command("role")
def set_role(ctx: typer.Context, key_id: str, role: str) -> None:
    """Change a key's role in its tenant (owner, member, viewer)."""
    chosen = _role(role)

    async def work(platform: Platform) -> ApiKey:
        key = await platform.api_keys.set_role(key_id, chosen)
        await platform.audit.record(
            key.tenant_id, "cli", "api_key.role", target=key.id, details={"role": chosen.value}
        )
        return key

    key = with_platform(settings_from(ctx), work)
    console.print(f"key [bold]{key.id}[/] is now {key.role.value}")


@app.command()
def rotate(ctx: typer.Context, key_id: str, as_json: JsonOption = False) -> None:
    """Give a key a new secret (same id and role); the old secret stops working now."""

    async def work(platform: Platform) -> tuple[ApiKey, str]:
        key, plaintext = await platform.api_keys.rotate(key_id)
        await platform.audit.record(key.tenant_id, "cli", "api_key.rotate", target=key.id)
        return key, plaintext

    key, plaintext = with_platform(settings_from(ctx), work)
    if as_json:
        print_json({"id": key.id, "key": plaintext})
        return
    console.print(f"rotated key [bold]{key.id}[/]; the new secret is shown only now:")
    typer.echo(plaintext)
