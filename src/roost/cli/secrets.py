"""``roost secrets set|list|delete NAME``: provider API keys, encrypted at rest.

The value is read from a hidden prompt, or from stdin when it is piped
(``printf %s "$KEY" | roost secrets set openai``), never from an argument (shell history,
process lists) and never printed. Configuration refers to a secret by name:
``api_key = "secret:openai"`` under ``[llm.providers.openai]``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from roost.cli.common import console, fail, format_time, settings_from, with_platform
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.errors import NotFound
from roost.security import DEFAULT_TENANT

if TYPE_CHECKING:
    from roost.platform import Platform
    from roost.security.secrets import SecretInfo

app = typer.Typer(help="Store credentials encrypted at rest.", no_args_is_help=True)
TenantOption = Annotated[
    str, typer.Option("--tenant", "-t", help="Tenant name (provider keys: the default tenant)")
]
ACTOR = "cli"


async def _tenant_id(platform: Platform, name: str) -> str:
    tenant = await platform.tenants.find_by_name(name)
    if tenant is None:
        raise NotFound(f"tenant {name!r} not found")
    return tenant.id


def _read_value() -> str:
    typed = sys.stdin.isatty()
    value = str(typer.prompt("value", hide_input=True)) if typed else sys.stdin.read()
    value = value.rstrip("\r\n")  # a piped `echo` adds a newline that is not part of the key
    if not value:
        fail("no value given (type it at the prompt, or pipe it on stdin)", code=2)
    return value


@app.command("set")
def set_secret(
    ctx: typer.Context,
    name: str,
    tenant: TenantOption = DEFAULT_TENANT,
    as_json: JsonOption = False,
) -> None:
    """Store (or replace) a secret; its value is read from a hidden prompt or stdin."""
    if not _valid(name):
        fail(f"invalid secret name {name!r}: 1-64 letters, digits, '_', '.' or '-'", code=2)
    value = _read_value()

    async def work(platform: Platform) -> SecretInfo:
        return await platform.secrets().set(
            await _tenant_id(platform, tenant), name, value, actor=ACTOR
        )

    info = with_platform(settings_from(ctx), work)
    if as_json:
        print_json(info.to_dict())
        return
    console.print(f'stored secret [bold]{info.name}[/]; refer to it as "secret:{info.name}"')


def _valid(name: str) -> bool:
    from roost.security.secrets import SECRET_NAME

    return bool(SECRET_NAME.match(name))


@app.command("list")
def list_secrets(
    ctx: typer.Context, tenant: TenantOption = DEFAULT_TENANT, as_json: JsonOption = False
) -> None:
    """Names of stored secrets and when they were set (never their values)."""

    async def work(platform: Platform) -> list[SecretInfo]:
        return await platform.secrets().list(await _tenant_id(platform, tenant))

    infos = with_platform(settings_from(ctx), work)
    if as_json:
        print_json([info.to_dict() for info in infos])
        return
    shown = table("name", "created", "updated", ids=("name",))
    for info in infos:
        shown.add_row(info.name, format_time(info.created_at), format_time(info.updated_at))
    print_table(shown)
    if not infos:
        console.print("no secrets (store one: roost secrets set NAME)")


@app.command()
def delete(ctx: typer.Context, name: str, tenant: TenantOption = DEFAULT_TENANT) -> None:
    """Delete a secret; providers that refer to it stop starting until it is set again."""

    async def work(platform: Platform) -> None:
        await platform.secrets().delete(await _tenant_id(platform, tenant), name, actor=ACTOR)

    with_platform(settings_from(ctx), work)
    console.print(f"deleted secret [bold]{name}[/]")
