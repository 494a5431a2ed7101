"""``roost kb add|sync|search|list|remove``: the knowledge base from the command line,
on this machine's store through the kernel's memory services; ``search`` and ``list``
also on a server with ``--url`` (see :mod:`roost.cli.target`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from roost.cli.common import console, err_console, settings_from, with_kernel
from roost.cli.memory import memory_of
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, act, tenant_id

if TYPE_CHECKING:
    from roost.memory.knowledge import SyncReport
    from roost.platform import Roost

app = typer.Typer(help="Knowledge base: add folders and files, re-sync them, search with citations.",
                  no_args_is_help=True)  # fmt: skip
CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="Collection name")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant name")]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[file]}", style="dim"), console=console,
    )  # fmt: skip


def _chunk_counter(progress: Progress, task: TaskID) -> Callable[[int, int], None]:
    """Chunks are embedded a window at a time; the bar counts across windows."""
    before = [0]  # chunks of the windows already embedded

    def advance(done: int, count: int) -> None:
        progress.update(task, completed=before[0] + done, total=before[0] + count)
        if done == count:
            before[0] += count

    return advance


def _add_up(total: SyncReport, report: SyncReport) -> None:
    for name in ("added", "updated", "unchanged", "removed", "failed"):
        getattr(total, name).extend(getattr(report, name))
    total.num_chunks += report.num_chunks


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
    paths: Annotated[list[str], typer.Argument(help="Files, folders or http(s) URLs to index")],
    collection: CollectionOpt = "default",
    tenant: TenantOpt = None,
) -> None:
    """Index files, folders (txt, md, html, pdf, code) and web pages; unchanged ones are
    skipped. Folders and URLs are re-synced by `roost kb sync` and by the server."""
    from roost.memory.knowledge import SyncReport

    async def work(kernel: Roost) -> SyncReport:
        total = SyncReport()
        memory = memory_of(kernel)
        owner = await tenant_id(kernel, tenant)
        await memory.knowledge.ensure_collection(owner, collection)
        with _progress() as progress:
            embedded = progress.add_task("embedding chunks", total=None, file="")
            for given in paths:
                if given.startswith(("http://", "https://")):
                    task = progress.add_task(f"fetching {given}", total=1, file="")
                    report = await memory.knowledge.add_url(owner, collection, given)
                    progress.update(task, completed=1)
                    _add_up(total, report)
                    continue
                path = Path(given)
                task = progress.add_task(f"indexing {path.name or path}", total=None, file="")

                def advance(done: int, count: int, uri: str, task: TaskID = task) -> None:
                    progress.update(task, completed=done, total=count, file=Path(uri).name)

                report = await memory.knowledge.add_path(
                    owner, collection, path, progress=advance,
                    on_chunks=_chunk_counter(progress, embedded),
                )  # fmt: skip
                _add_up(total, report)
        return total

    _print_report(with_kernel(settings_from(ctx), work))


@app.command()
def sync(
    ctx: typer.Context, collection: CollectionOpt = "default", tenant: TenantOpt = None
) -> None:
    """Re-sync every folder and URL of a collection: changed, new and deleted files and pages."""

    async def work(kernel: Roost) -> SyncReport:
        memory = memory_of(kernel)
        owner = await tenant_id(kernel, tenant)
        with _progress() as progress:
            embedded = progress.add_task("embedding chunks", total=None, file="")
            task = progress.add_task(f"syncing {collection}", total=None, file="")
            return await memory.knowledge.sync(
                owner, collection,
                progress=lambda d, n, uri: progress.update(task, completed=d, total=n, file=Path(uri).name),
                on_chunks=_chunk_counter(progress, embedded),
            )  # fmt: skip

    _print_report(with_kernel(settings_from(ctx), work))


@app.command()
def search(
    ctx: typer.Context,
    query: str,
    collection: CollectionOpt = "default",
    tenant: TenantOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many results")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, vector or keyword")] = "hybrid",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search a collection; every result cites its file and lines (or pages)."""
    if mode not in ("hybrid", "vector", "keyword"):
        raise typer.BadParameter("mode must be hybrid, vector or keyword")
    chosen: Literal["hybrid", "vector", "keyword"] = mode  # type: ignore[assignment]

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        from roost.memory.wire import hit_json

        owner = await tenant_id(kernel, tenant)
        hits = await memory_of(kernel).knowledge.search(owner, collection, query, k=k, mode=chosen)
        return [hit_json(hit) for hit in hits]

    def remote(api: Api) -> list[dict[str, Any]]:
        body = {"query": query, "k": k, "mode": chosen}
        return list(api.post(f"/v1/knowledge/collections/{collection}/search", body)["data"])

    hits = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(hits)
        return
    if not hits:
        console.print("no results")
    for n, hit in enumerate(hits, start=1):
        snippet = " ".join(hit["text"].split())
        console.print(f"{n}. {hit['citation']}  score {hit['score']:.4f}",
                      highlight=False, markup=False)  # fmt: skip
        console.print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}",
                      highlight=False, markup=False)  # fmt: skip


@app.command("list")
def list_collections(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List collections and how many sources and chunks each holds."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        from roost.memory.wire import collection_json, source_json

        knowledge = memory_of(kernel).knowledge
        owner = await tenant_id(kernel, tenant)
        rows = []
        for c in await knowledge.list_collections(owner):
            sources = await knowledge.sources(owner, c.id)
            rows.append(collection_json(c) | {"sources": [source_json(s) for s in sources]})
        return rows

    def remote(api: Api) -> list[dict[str, Any]]:
        rows = []
        for c in api.get("/v1/knowledge/collections")["data"]:
            sources = api.get(f"/v1/knowledge/collections/{c['name']}/sources")["data"]
            rows.append(c | {"sources": sources})
        return rows

    rows = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(rows)
        return
    shown = table("collection", "sources", "chunks", "description", ids=("collection",))
    for c in rows:
        num_chunks = sum(s["num_chunks"] for s in c["sources"])
        shown.add_row(c["name"], str(len(c["sources"])), str(num_chunks), c["description"])
    print_table(shown)


@app.command()
def remove(ctx: typer.Context, collection: str, tenant: TenantOpt = None) -> None:
    """Delete a collection with all its chunks."""

    async def work(kernel: Roost) -> None:
        owner = await tenant_id(kernel, tenant)
        await memory_of(kernel).knowledge.delete_collection(owner, collection)

    with_kernel(settings_from(ctx), work)
    console.print(f"removed collection [bold]{collection}[/]")
