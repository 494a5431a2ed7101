"""``roost kb add|sync|search|list|remove``: the knowledge base from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from roost.cli.common import console, err_console, settings_from, with_platform
from roost.cli.memory import open_memory, tenant_id_of

if TYPE_CHECKING:
    from roost.memory.knowledge import Collection, KnowledgeHit, SyncReport
    from roost.platform import Platform

app = typer.Typer(help="Knowledge base: add folders and files, re-sync them, search with citations.",
                  no_args_is_help=True)  # fmt: skip
CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="Collection name")]
TenantOpt = Annotated[str, typer.Option("--tenant", help="Tenant name")]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[file]}", style="dim"), console=console,
    )  # fmt: skip


def _print_report(report: SyncReport) -> None:
    console.print(
        f"added {len(report.added)}, updated {len(report.updated)}, unchanged"
        f" {len(report.unchanged)}, removed {len(report.removed)}, failed {len(report.failed)};"
        f" {report.num_chunks} chunks embedded"
    )
    for uri, reason in report.failed:
        err_console.print(f"  [yellow]skipped[/] {uri}: {reason}", highlight=False)


@app.command()
def add(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index")],
    collection: CollectionOpt = "default",
    tenant: TenantOpt = "default",
) -> None:
    """Index files and folders (txt, md, html, pdf, code); unchanged files are skipped."""
    from roost.memory.knowledge import SyncReport

    async def work(platform: Platform) -> SyncReport:
        total = SyncReport()
        async with open_memory(platform) as memory:
            tenant_id = await tenant_id_of(platform, tenant)
            await memory.knowledge.ensure_collection(tenant_id, collection)
            with _progress() as progress:
                for path in paths:
                    task = progress.add_task(f"indexing {path.name or path}", total=None, file="")

                    def advance(done: int, count: int, uri: str, task: TaskID = task) -> None:
                        progress.update(task, completed=done, total=count, file=Path(uri).name)

                    report = await memory.knowledge.add_path(
                        tenant_id, collection, path, progress=advance
                    )
                    for name in ("added", "updated", "unchanged", "removed", "failed"):
                        getattr(total, name).extend(getattr(report, name))
                    total.num_chunks += report.num_chunks
        return total

    _print_report(with_platform(settings_from(ctx), work))


@app.command()
def sync(
    ctx: typer.Context, collection: CollectionOpt = "default", tenant: TenantOpt = "default"
) -> None:
    """Re-sync every folder added to a collection: changed, new and deleted files."""

    async def work(platform: Platform) -> SyncReport:
        async with open_memory(platform) as memory:
            tenant_id = await tenant_id_of(platform, tenant)
            with _progress() as progress:
                task = progress.add_task(f"syncing {collection}", total=None, file="")
                return await memory.knowledge.sync(
                    tenant_id, collection,
                    progress=lambda d, n, uri: progress.update(task, completed=d, total=n, file=Path(uri).name),
                )  # fmt: skip

    _print_report(with_platform(settings_from(ctx), work))


@app.command()
def search(
    ctx: typer.Context,
    query: str,
    collection: CollectionOpt = "default",
    tenant: TenantOpt = "default",
    k: Annotated[int, typer.Option("-k", help="How many results")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, vector or keyword")] = "hybrid",
) -> None:
    """Search a collection; every result cites its file and lines (or pages)."""
    if mode not in ("hybrid", "vector", "keyword"):
        raise typer.BadParameter("mode must be hybrid, vector or keyword")
    chosen: Literal["hybrid", "vector", "keyword"] = mode  # type: ignore[assignment]

    async def work(platform: Platform) -> list[KnowledgeHit]:
        async with open_memory(platform) as memory:
            tenant_id = await tenant_id_of(platform, tenant)
            return await memory.knowledge.search(tenant_id, collection, query, k=k, mode=chosen)

    hits = with_platform(settings_from(ctx), work)
    if not hits:
        console.print("no results")
    for n, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())
        console.print(
            f"[bold]{n}.[/] [cyan]{hit.citation}[/]  score {hit.score:.4f}", highlight=False
        )
        console.print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}", highlight=False)


@app.command("list")
def list_collections(ctx: typer.Context, tenant: TenantOpt = "default") -> None:
    """List collections and how many sources each holds."""

    async def work(platform: Platform) -> list[tuple[Collection, int, int]]:
        async with open_memory(platform) as memory:
            tenant_id = await tenant_id_of(platform, tenant)
            rows = []
            for c in await memory.knowledge.list_collections(tenant_id):
                sources = await memory.knowledge.sources(tenant_id, c.id)
                rows.append((c, len(sources), sum(s.num_chunks for s in sources)))
            return rows

    table = Table("collection", "sources", "chunks", "description")
    for c, num_sources, num_chunks in with_platform(settings_from(ctx), work):
        table.add_row(c.name, str(num_sources), str(num_chunks), c.description)
    console.print(table)


@app.command()
def remove(ctx: typer.Context, collection: str, tenant: TenantOpt = "default") -> None:
    """Delete a collection with all its chunks."""

    async def work(platform: Platform) -> None:
        async with open_memory(platform) as memory:
            await memory.knowledge.delete_collection(
                await tenant_id_of(platform, tenant), collection
            )

    with_platform(settings_from(ctx), work)
    console.print(f"removed collection [bold]{collection}[/]")
