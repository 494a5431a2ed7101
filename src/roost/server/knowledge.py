"""``/v1/knowledge/collections``: knowledge-base collections, ingestion, sync and search.

Thin adapter over :class:`roost.memory.knowledge.KnowledgeBase` (opened by the memory
lifespan hook). Documents arrive as text over HTTP; folders are added from the machine
itself with ``roost kb add`` and can then be re-synced here; web pages are added here too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse

from roost.errors import RoostError
from roost.memory.knowledge import KnowledgeBase
from roost.memory.wire import collection_json, hit_json, report_json, source_json
from roost.server.sse import event_stream, sse_event

router = APIRouter(prefix="/v1/knowledge/collections", tags=["knowledge"])


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectionIn(Body):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^/]+$")
    description: str = Field("", max_length=2_000)


class DocumentIn(Body):
    uri: str = Field(min_length=1, max_length=2_000, description="Your id for the document")
    text: str = Field(max_length=5_000_000)
    title: str = Field("", max_length=500)
    kind: Literal["text", "markdown", "html", "code"] = "text"
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchIn(Body):
    query: str = Field(min_length=1, max_length=4_000)
    k: int = Field(5, ge=1, le=100)
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    where: dict[str, Any] | None = None


def knowledge(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase = request.app.state.memory.knowledge
    return kb


def tenant(request: Request) -> str:
    return str(request.state.principal.tenant_id)


@router.post("", status_code=201)
async def create_collection(body: CollectionIn, request: Request) -> dict[str, Any]:
    return collection_json(
        await knowledge(request).create_collection(tenant(request), body.name, body.description)
    )


@router.get("")
async def list_collections(request: Request) -> dict[str, Any]:
    found = await knowledge(request).list_collections(tenant(request))
    return {"object": "list", "data": [collection_json(c) for c in found]}


@router.get("/{collection}")
async def get_collection(collection: str, request: Request) -> dict[str, Any]:
    return collection_json(await knowledge(request).collection(tenant(request), collection))


@router.delete("/{collection}", status_code=204)
async def delete_collection(collection: str, request: Request) -> Response:
    await knowledge(request).delete_collection(tenant(request), collection)
    return Response(status_code=204)


@router.post("/{collection}/documents")
async def ingest_document(collection: str, body: DocumentIn, request: Request) -> dict[str, Any]:
    """Index text under ``uri``; the same uri again replaces it (or does nothing if unchanged)."""
    state = await knowledge(request).add_text(
        tenant(request), collection, body.uri, body.text, kind=body.kind, title=body.title,
        metadata=body.metadata,
    )  # fmt: skip
    return {"uri": body.uri, "status": state}


@router.get("/{collection}/sources")
async def list_sources(collection: str, request: Request) -> dict[str, Any]:
    found = await knowledge(request).sources(tenant(request), collection)
    return {"object": "list", "data": [source_json(s) for s in found]}


@router.get("/{collection}/folders")
async def list_folders(collection: str, request: Request) -> dict[str, Any]:
    """Folders the collection syncs, each with its last sync, status and file count."""
    kb = knowledge(request)
    found = await kb.collection(tenant(request), collection)
    folders = await kb.folders.of(tenant(request), found.id)
    return {"object": "list", "data": [dataclasses.asdict(f) for f in folders]}


@router.delete("/{collection}/sources", status_code=204)
async def delete_source(collection: str, uri: str, request: Request) -> Response:
    await knowledge(request).remove_source(tenant(request), collection, uri)
    return Response(status_code=204)


@router.post("/{collection}/sync", response_model=None)
async def sync_collection(
    collection: str, request: Request, stream: bool = False
) -> dict[str, Any] | StreamingResponse:
    """Re-sync the folders and URLs of the collection: changed, new and deleted files.

    ``?stream=true`` answers with server-sent events while it works: ``progress``
    (``files_done``, ``files``, ``uri``), ``embedding`` (``chunks_done``, ``chunks`` of the
    window being embedded), then ``done`` with the report (or ``error``)."""
    kb, owner = knowledge(request), tenant(request)
    await kb.collection(owner, collection)  # 404 before any stream starts
    if not stream:
        return report_json(await kb.sync(owner, collection))
    events: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def work() -> None:
        try:
            report = await kb.sync(
                owner, collection,
                progress=lambda d, n, uri: events.put_nowait(
                    sse_event("progress", {"files_done": d, "files": n, "uri": uri})
                ),
                on_chunks=lambda d, n: events.put_nowait(
                    sse_event("embedding", {"chunks_done": d, "chunks": n})
                ),
            )  # fmt: skip
            events.put_nowait(sse_event("done", report_json(report)))
        except RoostError as exc:
            events.put_nowait(sse_event("error", {"code": exc.code, "message": exc.message}))
        except Exception:  # the stream has started: say so in it, then let the log have it
            events.put_nowait(sse_event("error", {"code": "internal", "message": "sync failed"}))
            raise
        finally:
            events.put_nowait(None)

    # The sync finishes even if the client leaves: cancelling it mid-write helps nobody.
    task = asyncio.ensure_future(work())

    async def emit() -> AsyncIterator[bytes]:
        while (event := await events.get()) is not None:
            yield event
        await task

    return event_stream(emit())


class UrlIn(Body):
    url: str = Field(min_length=1, max_length=2_000, description="An http(s) page to index")


@router.post("/{collection}/urls")
async def add_url(collection: str, body: UrlIn, request: Request) -> dict[str, Any]:
    """Index a web page now and re-sync it with the collection (conditional requests)."""
    return report_json(await knowledge(request).add_url(tenant(request), collection, body.url))


@router.get("/{collection}/urls")
async def list_urls(collection: str, request: Request) -> dict[str, Any]:
    """URLs the collection syncs, each with its last sync, status and validators."""
    kb = knowledge(request)
    found = await kb.collection(tenant(request), collection)
    urls = await kb.urls.of(tenant(request), found.id)
    return {"object": "list", "data": [dataclasses.asdict(u) for u in urls]}


@router.delete("/{collection}/urls", status_code=204)
async def delete_url(collection: str, url: str, request: Request) -> Response:
    await knowledge(request).remove_url(tenant(request), collection, url)
    return Response(status_code=204)


@router.post("/{collection}/search")
async def search_collection(collection: str, body: SearchIn, request: Request) -> dict[str, Any]:
    hits = await knowledge(request).search(
        tenant(request), collection, body.query, k=body.k, mode=body.mode, where=body.where
    )
    return {"object": "list", "data": [hit_json(h) for h in hits]}
