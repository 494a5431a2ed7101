"""``roost limits show|set|clear|reset``: per-tenant rate, token and concurrency limits.

Overrides set here are stored in the database and reach every running server within
``limits.overrides_refresh_s``; ``reset`` empties a tenant's buckets and slots now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from roost.cli.common import console, settings_from, with_platform

if TYPE_CHECKING:
    from roost.limits.service import Limiter
    from roost.platform import Platform

app = typer.Typer(
    help="Rate, token and concurrency limits per tenant and per key.", no_args_is_help=True
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
Limit = Annotated[int | None, typer.Option(min=0, help="0: no limit")]


async def _limiter(platform: Platform) -> Limiter:
    from roost.limits.service import Limiter

    return await Limiter.open(platform.settings, platform.database, platform.redis)


async def _tenant_id(platform: Platform, tenant: str) -> str:
    for t in await platform.tenants.list():
        if tenant in (t.id, t.name):
            return t.id
    raise typer.BadParameter(f"no tenant named {tenant!r}", param_hint="TENANT")


async def _report(platform: Platform, limiter: Limiter, tenant_id: str) -> dict[str, Any]:
    override = await limiter.overrides.get(tenant_id)
    return {
        "tenant_id": tenant_id,
        "effective": (await limiter.policy(tenant_id)).as_dict(),
        "override": override.model_dump(exclude_none=True) if override else None,
    }


def _print(reports: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        console.print_json(data=reports)
        return
    table = Table("tenant", "scope", "requests/min", "tokens/min", "concurrency", "overridden")
    for report in reports:
        override = report["override"] or {}
        for scope in ("tenant", "key"):
            values = report["effective"][scope]
            table.add_row(
                report["tenant_id"], "each key" if scope == "key" else scope,
                *(str(values[n] or "-") for n in ("requests_per_minute", "tokens_per_minute",
                                                  "concurrency")),
                ", ".join(sorted(override.get(scope, {}))) or "",
            )  # fmt: skip
    console.print(table)
    console.print("  '-' is no limit; values apply on every server sharing this store.")


@app.command()
def show(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Argument(help="Tenant name or id (default: all)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the effective limits of one tenant or of every tenant."""

    async def work(platform: Platform) -> list[dict[str, Any]]:
        limiter = await _limiter(platform)
        try:
            if tenant is not None:
                ids = [await _tenant_id(platform, tenant)]
            else:
                ids = [t.id for t in await platform.tenants.list()]
            return [await _report(platform, limiter, tenant_id) for tenant_id in ids]
        finally:
            await limiter.close()

    _print(with_platform(settings_from(ctx), work), as_json)


@app.command("set")
def set_limits(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant name or id")],
    rpm: Annotated[int | None, typer.Option("--rpm", min=0, help="Tenant requests/min")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=0, help="Tenant tokens/min")] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=0, help="Tenant model calls at once")
    ] = None,
    key_rpm: Annotated[int | None, typer.Option("--key-rpm", min=0, help="Per key")] = None,
    key_tpm: Annotated[int | None, typer.Option("--key-tpm", min=0, help="Per key")] = None,
    key_concurrency: Annotated[
        int | None, typer.Option("--key-concurrency", min=0, help="Per key")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Override limits of a tenant (0: no limit); options not given keep their override."""
    from roost.config import LimitOverride, LimitValues

    async def work(platform: Platform) -> list[dict[str, Any]]:
        limiter = await _limiter(platform)
        try:
            tenant_id = await _tenant_id(platform, tenant)
            current = await limiter.overrides.get(tenant_id) or LimitOverride()
            given = {
                "tenant": {"requests_per_minute": rpm, "tokens_per_minute": tpm,
                           "concurrency": concurrency},
                "key": {"requests_per_minute": key_rpm, "tokens_per_minute": key_tpm,
                        "concurrency": key_concurrency},
            }  # fmt: skip
            merged = current.model_dump()
            for scope, values in given.items():
                merged[scope].update({k: v for k, v in values.items() if v is not None})
            override = LimitOverride(
                tenant=LimitValues(**merged["tenant"]), key=LimitValues(**merged["key"])
            )
            await limiter.set_override(tenant_id, override)
            await platform.audit.record(tenant_id, "cli", "limits.set", target=tenant_id)
            return [await _report(platform, limiter, tenant_id)]
        finally:
            await limiter.close()

    _print(with_platform(settings_from(ctx), work), as_json)


@app.command()
def clear(ctx: typer.Context, tenant: Annotated[str, typer.Argument()]) -> None:
    """Remove a tenant's override: roost.toml's limits apply again."""

    async def work(platform: Platform) -> bool:
        limiter = await _limiter(platform)
        try:
            tenant_id = await _tenant_id(platform, tenant)
            return await limiter.overrides.delete(tenant_id)
        finally:
            await limiter.close()

    removed = with_platform(settings_from(ctx), work)
    console.print("override removed" if removed else "no override was set")


@app.command()
def reset(ctx: typer.Context, tenant: Annotated[str, typer.Argument()]) -> None:
    """Refill a tenant's buckets and free its concurrency slots now."""

    async def work(platform: Platform) -> int:
        limiter = await _limiter(platform)
        try:
            return await limiter.reset(await _tenant_id(platform, tenant))
        finally:
            await limiter.close()

    count = with_platform(settings_from(ctx), work)
    console.print(f"reset {count} bucket(s) and slot set(s)")
