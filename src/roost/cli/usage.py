"""``roost usage``: model calls, tokens and cost per tenant, from the usage records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from roost.cli.common import console, settings_from, with_platform

if TYPE_CHECKING:
    from roost.platform import Platform

DAY_MS = 86_400_000


def usage(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Tenant name or id (default: every tenant)")
    ] = None,
    days: Annotated[int, typer.Option("--days", "-d", min=1, help="Window ending now")] = 30,
    by: Annotated[
        str, typer.Option("--by", help="Group rows by model, day, key or agent")
    ] = "model",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Show model usage and cost per tenant."""
    if by not in ("model", "day", "key", "agent"):
        raise typer.BadParameter("use model, day, key or agent", param_hint="--by")
    group_by: Literal["model", "day", "key", "agent"] = by  # type: ignore[assignment]
    settings = settings_from(ctx)

    async def work(platform: Platform) -> list[dict[str, Any]]:
        # Imported here: the LLM layer loads provider SDKs, which other commands never need.
        from roost.llm.budgets import BudgetLedger
        from roost.llm.schema import LLM_MIGRATIONS
        from roost.llm.usage import UsageStore
        from roost.storage import migrate, now_ms

        await migrate(platform.database, LLM_MIGRATIONS)
        tenants = await platform.tenants.list()
        if tenant is not None:
            tenants = [t for t in tenants if tenant in (t.id, t.name)]
            if not tenants:
                raise typer.BadParameter(f"no tenant named {tenant!r}", param_hint="--tenant")
        store = UsageStore(platform.database)
        ledger = BudgetLedger(platform.database, settings.llm.budgets)
        reports = []
        for t in tenants:
            summary = await store.summary(
                t.id, since_ms=now_ms() - days * DAY_MS, group_by=group_by
            )
            summary["tenant_name"] = t.name
            summary["budgets"] = await ledger.status(t.id)
            reports.append(summary)
        return reports

    reports = with_platform(settings, work)
    if as_json:
        console.print_json(data=reports)
        return
    for report in reports:
        table = Table(
            group_by, "calls", "cache hits", "errors", "input tok", "output tok", "cost USD",
            "avg ms",
            title=f"{report['tenant_name']} ({report['tenant_id']}) · last {days} days",
        )  # fmt: skip
        for row in report["rows"]:
            table.add_row(
                row[group_by], str(row["calls"]), str(row["cache_hits"]), str(row["errors"]),
                str(row["input_tokens"]), str(row["output_tokens"]), f"{row['cost_usd']:.6f}",
                f"{row['avg_latency_ms']:.0f}",
            )  # fmt: skip
        table.add_row(
            "total", str(report["total_calls"]), "", "", str(report["total_input_tokens"]),
            str(report["total_output_tokens"]), f"{report['total_cost_usd']:.6f}", "",
            style="bold",
        )  # fmt: skip
        console.print(table)
        for b in report["budgets"]:
            if "limit_tokens" in b:
                console.print(
                    f"  budget {b['scope']} {b['period']}: {b['spent_tokens']} tokens used,"
                    f" {b['reserved_tokens']} held, {b['remaining_tokens']} left of"
                    f" {b['limit_tokens']}"
                )
                continue
            console.print(
                f"  budget {b['scope']} {b['period']}: ${b['spent_usd']:.4f} spent,"
                f" ${b['reserved_usd']:.4f} held, ${b['remaining_usd']:.4f} left of"
                f" ${b['limit_usd']:.2f}"
            )
