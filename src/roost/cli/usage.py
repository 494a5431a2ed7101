"""``roost usage``: model calls, tokens and cost per tenant, from the kernel's LLM service
on this machine's store (every tenant by default), or a server's with ``--url`` (the
API key's tenant; see :mod:`roost.cli.target`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from roost.cli.common import console
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, act

if TYPE_CHECKING:
    from roost.platform import Roost

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
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show model usage and cost per tenant."""
    if by not in ("model", "day", "key", "agent"):
        raise typer.BadParameter("use model, day, key or agent", param_hint="--by")
    group_by: Literal["model", "day", "key", "agent"] = by  # type: ignore[assignment]

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        from roost.storage import now_ms

        service = kernel.llm
        assert service.usage is not None
        assert service.budgets is not None
        tenants = await kernel.platform.tenants.list()
        if tenant is not None:
            tenants = [t for t in tenants if tenant in (t.id, t.name)]
            if not tenants:
                raise typer.BadParameter(f"no tenant named {tenant!r}", param_hint="--tenant")
        reports = []
        for t in tenants:
            summary = await service.usage.summary(
                t.id, since_ms=now_ms() - days * DAY_MS, group_by=group_by
            )
            summary["tenant_name"] = t.name
            summary["budgets"] = await service.budgets.status(t.id)
            reports.append(summary)
        return reports

    def remote(api: Api) -> list[dict[str, Any]]:
        return [dict(api.get("/v1/usage", days=days, group_by=group_by))]

    reports = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(reports)
        return
    for report in reports:
        name = report.get("tenant_name", report["tenant_id"])
        shown = table(
            group_by, "calls", "cache hits", "errors", "input tok", "output tok", "cost USD",
            "avg ms", ids=(group_by,),
            title=f"{name} ({report['tenant_id']}) · last {days} days",
        )  # fmt: skip
        for row in report["rows"]:
            shown.add_row(
                row[group_by], str(row["calls"]), str(row["cache_hits"]), str(row["errors"]),
                str(row["input_tokens"]), str(row["output_tokens"]), f"{row['cost_usd']:.6f}",
                f"{row['avg_latency_ms']:.0f}",
            )  # fmt: skip
        shown.add_row(
            "total", str(report["total_calls"]), "", "", str(report["total_input_tokens"]),
            str(report["total_output_tokens"]), f"{report['total_cost_usd']:.6f}", "",
            style="bold",
        )  # fmt: skip
        print_table(shown)
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
