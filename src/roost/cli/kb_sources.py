"""``roost kb sources``: a collection's folders with their last sync and status, and its
sources with when each was last indexed. (Its own module: the rest of ``roost kb`` lives
in kb.py.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table

from roost.cli.common import console, format_time, settings_from, with_platform
from roost.cli.memory import open_memory, tenant_id_of

if TYPE_CHECKING:
    from roost.platform import Platform


def sources(
    ctx: typer.Context,
    collection: Annotated[str, typer.Argument(help="Collection name or id")],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant name")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Folders (last sync, status, files) and sources (last indexed, chunks) of a collection."""

    async def work(platform: Platform) -> dict[str, Any]:
        async with open_memory(platform) as memory:
            tenant_id = await tenant_id_of(platform, tenant)
            kb = memory.knowledge
            found = await kb.collection(tenant_id, collection)
            return {
                "folders": [
                    {"root": f.root, "status": f.status, "last_sync_at": f.last_sync_at,
                     "num_files": f.num_files, "message": f.message}
                    for f in await kb.folders.of(tenant_id, found.id)
                ],
                "sources": [
                    {"uri": s.uri, "kind": s.kind, "num_chunks": s.num_chunks,
                     "updated_at": s.updated_at, "content_hash": s.content_hash}
                    for s in await kb.sources(tenant_id, found.id)
                ],
            }  # fmt: skip

    listing = with_platform(settings_from(ctx), work)
    if as_json:
        console.print_json(data=listing)
        return
    folders = Table(Column("folder", overflow="fold"), "status", "last sync", "files", "note")
    for f in listing["folders"]:
        folders.add_row(
            f["root"],
            f["status"],
            format_time(f["last_sync_at"]),
            str(f["num_files"]),
            f["message"],
        )
    if listing["folders"]:
        console.print(folders)
    table = Table(Column("source", overflow="fold"), "kind", "chunks", "last indexed")
    for s in listing["sources"]:
        table.add_row(s["uri"], s["kind"], str(s["num_chunks"]), format_time(s["updated_at"]))
    console.print(table)
