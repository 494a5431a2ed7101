"""``roost traces list|show``: the trace store, read straight from the platform database
(no server needed), one tenant at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from roost.cli.common import console, format_time, settings_from, with_platform

if TYPE_CHECKING:
    from roost.platform import Platform

app = typer.Typer(help="Traces of model calls, runs and requests (list, show one as a tree).")
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name or id")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table/tree")]


async def _store_for(platform: Platform, tenant: str) -> tuple[Any, str]:
    # Imported here: SQLAlchemy and the store are for the commands that read traces.
    from roost.observe.trace_schema import TRACE_MIGRATIONS
    from roost.observe.trace_store import TraceStore
    from roost.storage import migrate

    found = next((t for t in await platform.tenants.list() if tenant in (t.id, t.name)), None)
    if found is None:
        raise typer.BadParameter(f"no tenant named {tenant!r}", param_hint="--tenant")
    await migrate(platform.database, TRACE_MIGRATIONS)
    return TraceStore(platform.database), found.id


@app.command("list")
def list_traces(
    ctx: typer.Context,
    tenant: TenantOption = "default",
    run_id: Annotated[str | None, typer.Option("--run")] = None,
    thread_id: Annotated[str | None, typer.Option("--thread")] = None,
    agent: Annotated[str | None, typer.Option("--agent")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    status: Annotated[str | None, typer.Option("--status", help="ok or error")] = None,
    min_latency_ms: Annotated[float | None, typer.Option("--min-latency-ms", min=0)] = None,
    min_cost_usd: Annotated[float | None, typer.Option("--min-cost", min=0)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500)] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor", help="next_cursor of a page")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a tenant's traces, newest first."""
    if status not in (None, "ok", "error"):
        raise typer.BadParameter("use ok or error", param_hint="--status")

    async def work(platform: Platform) -> Any:
        from roost.observe.trace_store import TraceFilter

        store, tenant_id = await _store_for(platform, tenant)
        where = TraceFilter(
            run_id=run_id, thread_id=thread_id, agent=agent, model=model, status=status,
            min_latency_ms=min_latency_ms, min_cost_usd=min_cost_usd,
        )  # fmt: skip
        return await store.list_traces(tenant_id, where, limit=limit, cursor=cursor)

    page = with_platform(settings_from(ctx), work)
    if as_json:
        console.print_json(data={"data": page.traces, "next_cursor": page.next_cursor})
        return
    table = Table()
    # The id is what `traces show` needs: never truncated, other columns wrap instead.
    table.add_column("trace", no_wrap=True, min_width=32)
    for header in ("name", "start (UTC)", "ms", "spans", "status", "models", "cost USD"):
        table.add_column(header)
    for t in page.traces:
        table.add_row(
            t["trace_id"], t["name"], _time(t["start_time_us"]), f"{t['duration_ms']:.1f}",
            str(t["span_count"]), t["status"], ",".join(t["models"]), f"{t['cost_usd']:.6f}",
        )  # fmt: skip
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@app.command("show")
def show_trace(
    ctx: typer.Context,
    trace_id: Annotated[str, typer.Argument(help="32 hex digits")],
    tenant: TenantOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Show one trace as a tree of spans with timings, tokens and cost."""

    async def work(platform: Platform) -> Any:
        store, tenant_id = await _store_for(platform, tenant)
        return await store.get_trace(tenant_id, trace_id)

    found = with_platform(settings_from(ctx), work)
    if found is None:
        console.print(f"[bold red]error:[/] no trace {trace_id!r}", highlight=False)
        raise typer.Exit(1)
    if as_json:
        console.print_json(data=found)
        return
    title = (
        f"[bold]{found['name']}[/] {found['trace_id']} · {found['duration_ms']:.1f} ms · "
        f"{found['span_count']} spans · ${found['cost_usd']:.6f}"
    )
    tree = Tree(title)
    for span in found["spans"]:
        _add(tree, span, found["start_time_us"])
    console.print(tree)


def _add(parent: Tree, span: dict[str, Any], trace_start_us: int) -> None:
    attributes = span["attributes"]
    details = [f"+{(span['start_time_us'] - trace_start_us) / 1000:.1f} ms",
               f"{span['duration_ms']:.1f} ms"]  # fmt: skip
    if "gen_ai.usage.input_tokens" in attributes:
        details.append(
            f"tokens {attributes['gen_ai.usage.input_tokens']}→"
            f"{attributes.get('gen_ai.usage.output_tokens', 0)}"
        )
    if span["cost_usd"]:
        details.append(f"${span['cost_usd']:.6f}")
    mark = "[red]✗[/] " if span["status"] == "error" else ""
    node = parent.add(f"{mark}[bold]{span['name']}[/] [dim]{' · '.join(details)}[/]")
    for child in span["children"]:
        _add(node, child, trace_start_us)


def _time(epoch_us: int) -> str:
    return format_time(epoch_us // 1000)
