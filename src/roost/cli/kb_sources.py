"""``roost kb sources``: a collection's folders and URLs with their last sync and status, and its
sources with when each was last indexed. (Its own module: the rest of ``roost kb`` lives
in kb.py.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table

from roost.cli.common import console, format_time
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, TenantOption, act, tenant_id

if TYPE_CHECKING:
    from roost.platform import Roost


def sources(
    ctx: typer.Context,
    collection: Annotated[str, typer.Argument(help="Collection name or id")],
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Folders (last sync, status, files) and sources (last indexed, chunks) of a collection."""

    async def local(kernel: Roost) -> dict[str, Any]:
        from roost.cli.memory import memory_of

        kb = memory_of(kernel).knowledge
        owner = await tenant_id(kernel, tenant)
        found = await kb.collection(owner, collection)
        return {
            "folders": [
                {"root": f.root, "status": f.status, "last_sync_at": f.last_sync_at,
                 "num_files": f.num_files, "message": f.message}
                for f in await kb.folders.of(owner, found.id)
            ],
            "urls": [
                {"url": u.url, "status": u.status, "last_sync_at": u.last_sync_at,
                 "message": u.message, "etag": u.etag, "last_modified": u.last_modified}
                for u in await kb.urls.of(owner, found.id)
            ],
            "sources": [
                {"uri": s.uri, "kind": s.kind, "num_chunks": s.num_chunks,
                 "updated_at": s.updated_at, "content_hash": s.content_hash}
                for s in await kb.sources(owner, found.id)
            ],
        }  # fmt: skip

    def remote(api: Api) -> dict[str, Any]:
        base = f"/v1/knowledge/collections/{collection}"
        folders = api.get(f"{base}/folders")["data"]
        keys = ("root", "status", "last_sync_at", "num_files", "message")
        return {
            "folders": [{k: f.get(k) for k in keys} for f in folders],
            "urls": [
                {k: u.get(k) for k in ("url", "status", "last_sync_at", "message", "etag",
                                       "last_modified")}
                for u in api.get(f"{base}/urls")["data"]
            ],
            "sources": list(api.get(f"{base}/sources")["data"]),
        }  # fmt: skip

    listing = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
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
    urls = Table(Column("url", overflow="fold"), "status", "last sync", "note")
    for u in listing["urls"]:
        urls.add_row(u["url"], u["status"], format_time(u["last_sync_at"]), u["message"])
    if listing["urls"]:
        console.print(urls)
    table = Table(Column("source", overflow="fold"), "kind", "chunks", "last indexed")
    for s in listing["sources"]:
        table.add_row(s["uri"], s["kind"], str(s["num_chunks"]), format_time(s["updated_at"]))
    console.print(table)
