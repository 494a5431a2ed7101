"""``roost audit list|verify``: read this machine's audit log and check its hash chains.

Always on the local store (the CLI user is the machine's operator): ``list`` shows every
tenant unless ``--tenant`` narrows it; ``verify`` recomputes each tenant's chain and exits
1 naming the first record that does not add up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, err_console, format_time, settings_from, with_platform
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.errors import NotFound

if TYPE_CHECKING:
    from roost.platform import Platform
    from roost.security.audit import AuditPage
    from roost.security.audit_verify import VerifyReport

app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)
TenantOption = Annotated[
    str | None, typer.Option("--tenant", "-t", help="Tenant name (default: every tenant)")
]


async def _tenant_id(platform: Platform, name: str | None) -> str | None:
    if name is None:
        return None
    tenant = await platform.tenants.find_by_name(name)
    if tenant is None:
        raise NotFound(f"tenant {name!r} not found")
    return tenant.id


@app.command("list")
def list_events(
    ctx: typer.Context,
    tenant: TenantOption = None,
    action: Annotated[
        str | None, typer.Option("--action", "-a", help="Action, or a prefix ending in '*'")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="e.g. key:<id>, cli")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="ok, denied, ...")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="next_cursor of a page")] = None,
    as_json: JsonOption = False,
) -> None:
    """Audit records, newest first."""
    from roost.security.audit import AuditFilter

    async def work(platform: Platform) -> tuple[AuditPage, dict[str, str]]:
        where = AuditFilter(await _tenant_id(platform, tenant), action, actor, outcome)
        names = {t.id: t.name for t in await platform.tenants.list()}
        return await platform.audit.query(where, limit=limit, cursor=cursor), names

    page, names = with_platform(settings_from(ctx), work)
    if as_json:
        print_json({"data": [e.to_dict() for e in page.events], "next_cursor": page.next_cursor})
        return
    shown = table("time", "tenant", "seq", "actor", "action", "target", "outcome", "request",
                  ids=("seq",))  # fmt: skip
    for e in page.events:
        shown.add_row(
            format_time(e.at), names.get(e.tenant_id, e.tenant_id), str(e.seq or "-"),
            e.actor + (f" ({e.principal_role})" if e.principal_role else ""), e.action,
            e.target or "-", e.outcome, e.request_id or "-",
        )  # fmt: skip
    print_table(shown)
    if page.next_cursor:
        console.print(f"more: roost audit list --cursor {page.next_cursor}", highlight=False)


@app.command()
def verify(ctx: typer.Context, tenant: TenantOption = None, as_json: JsonOption = False) -> None:
    """Recompute every tenant's hash chain; exit 1 naming the first broken record."""
    from roost.security.audit_verify import verify_audit

    async def work(platform: Platform) -> tuple[VerifyReport, dict[str, str]]:
        report = await verify_audit(platform.database, await _tenant_id(platform, tenant))
        return report, {t.id: t.name for t in await platform.tenants.list()}

    report, names = with_platform(settings_from(ctx), work)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report, names)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report: VerifyReport, names: dict[str, str]) -> None:
    for tenant_id, checked in sorted(report.checked.items()):
        unchained = report.unchained.get(tenant_id, 0)
        extra = f", {unchained} from before the chain (unchecked)" if unchained else ""
        console.print(
            f"{names.get(tenant_id, tenant_id)}: {checked} record(s) verified{extra}",
            highlight=False,
        )
    for broken in report.breaks:
        where: Any = broken.event_id or "after the last record"
        err_console.print(
            f"[bold red]BROKEN[/] tenant {names.get(broken.tenant_id, broken.tenant_id)}:"
            f" record {where} (seq {broken.seq}): {broken.reason}",
            highlight=False,
        )
    if report.ok:
        console.print("audit log intact", highlight=False)
