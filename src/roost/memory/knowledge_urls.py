"""Web pages as knowledge sources: fetched through the SSRF guard of the tools' http_fetch,
re-synced with conditional requests, incrementally by content hash.

A URL added to a collection is recorded in ``kb_urls`` with its validators (``ETag``,
``Last-Modified``) and the outcome of its last sync, and re-fetched on every sync of the
collection (by hand, or on the server's interval):

- ``304 Not Modified`` (the server honoured ``If-None-Match`` / ``If-Modified-Since``),
  or a body whose SHA-256 did not change: nothing is embedded;
- a changed body: HTML turned into text (scripts, styles and navigation dropped), chunked,
  only the new chunks embedded (the embedding cache), the old ones replaced;
- ``404`` / ``410``: the page is gone, its chunks are removed (status ``gone``; the URL
  stays listed, so a page that comes back is indexed again);
- anything else (refused address, network error, 5xx, a body too large or not text):
  status ``failed`` with why, and the chunks of the last good fetch stay searchable.

A URL the guard refuses when it is added is not recorded: adding it fails (400) saying why.

Every hop goes through :func:`roost.tools.netguard.fetch`: no loopback, private or
link-local address unless the operator exempts its network (``tools.http_allowed_networks``),
the address pinned after one resolution, credentials never carried across origins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from roost.errors import InvalidRequest, NotFound
from roost.memory.extract import MAX_FILE_BYTES, Extracted, extract_html, extract_markdown
from roost.memory.knowledge_ingest import ChunkProgress, embed_sources
from roost.storage import Database, now_ms
from roost.tools.base import ToolFailure
from roost.tools.netguard import NetworkPolicy, NetworkRefused, fetch, parse_target

if TYPE_CHECKING:
    from roost.memory.knowledge import Collection, KnowledgeBase, SyncReport

_TEXT_TYPES = ("text/", "application/xhtml", "application/xml", "application/json")


@dataclass(frozen=True, slots=True)
class UrlSource:
    tenant_id: str
    collection_id: str
    url: str
    added_at: int
    last_sync_at: int | None
    status: str  # ok, failed, gone, pending
    message: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    state: str  # added, updated, unchanged, removed, failed
    status: str  # the URL's status after this sync
    message: str = ""
    etag: str | None = None
    last_modified: str | None = None
    refused: bool = False  # the SSRF guard said no: no later sync will say otherwise


class UrlSources:
    """The URL sources of a knowledge base: recorded, fetched and indexed."""

    def __init__(self, knowledge: KnowledgeBase, network: NetworkPolicy | None) -> None:
        self.knowledge = knowledge
        self.network = network  # None: this deployment does not fetch URLs

    @property
    def database(self) -> Database:
        return self.knowledge.database

    async def add(self, tenant_id: str, collection: Collection, url: str) -> SyncReport:
        """Record ``url`` in the collection and fetch it now."""
        from roost.memory.knowledge import SyncReport

        if self.network is None:
            raise InvalidRequest(
                "URL sources are turned off here (memory.knowledge_urls = false)", param="url"
            )
        if len(url) > 2_000:
            raise InvalidRequest("a URL is at most 2000 characters", param="url")
        try:
            parse_target(url)
        except ToolFailure as exc:
            raise InvalidRequest(exc.message, param="url") from exc
        await self.database.execute(
            "INSERT INTO kb_urls (tenant_id, collection_id, url, added_at, status, message)"
            " VALUES (:t, :c, :u, :now, 'pending', '') ON CONFLICT (tenant_id, collection_id, url)"
            " DO NOTHING",
            {"t": tenant_id, "c": collection.id, "u": url, "now": now_ms()},
        )
        report = SyncReport()
        row = next(u for u in await self.of(tenant_id, collection.id) if u.url == url)
        if await self._sync_one(tenant_id, collection, row, report) and row.last_sync_at is None:
            # A new URL the guard refuses is not kept: fail closed, and say so now (4xx).
            await self.database.execute(
                "DELETE FROM kb_urls WHERE tenant_id = :t AND collection_id = :c AND url = :u",
                {"t": tenant_id, "c": collection.id, "u": url},
            )
            raise InvalidRequest(f"refused: {report.failed[-1][1]}", param="url")
        return report

    async def remove(self, tenant_id: str, collection: Collection, url: str) -> None:
        removed = await self.database.execute(
            "DELETE FROM kb_urls WHERE tenant_id = :t AND collection_id = :c AND url = :u",
            {"t": tenant_id, "c": collection.id, "u": url},
        )
        if not removed:
            raise NotFound(f"no URL {url!r} in {collection.name!r}")
        source = await self.knowledge._source_row(tenant_id, collection, url)
        if source is not None:
            await self.knowledge._remove(tenant_id, collection, source)

    async def of(self, tenant_id: str, collection_id: str) -> list[UrlSource]:
        rows = await self.database.fetch_all(
            "SELECT * FROM kb_urls WHERE tenant_id = :t AND collection_id = :c ORDER BY url",
            {"t": tenant_id, "c": collection_id},
        )
        return [_url(row) for row in rows]

    async def everywhere(self) -> list[UrlSource]:
        """Every URL of every tenant (the background syncer's work list)."""
        rows = await self.database.fetch_all("SELECT * FROM kb_urls ORDER BY tenant_id, url")
        return [_url(row) for row in rows]

    async def forget(self, tenant_id: str, collection_id: str) -> None:
        await self.database.execute(
            "DELETE FROM kb_urls WHERE tenant_id = :t AND collection_id = :c",
            {"t": tenant_id, "c": collection_id},
        )

    async def sync(
        self, tenant_id: str, collection: Collection, report: SyncReport,
        on_chunks: ChunkProgress | None = None,
    ) -> None:  # fmt: skip
        for row in await self.of(tenant_id, collection.id):
            await self._sync_one(tenant_id, collection, row, report, on_chunks)

    async def _sync_one(
        self, tenant_id: str, collection: Collection, row: UrlSource, report: SyncReport,
        on_chunks: ChunkProgress | None = None,
    ) -> bool:  # fmt: skip
        """Sync one URL; True when the SSRF guard refused it."""
        outcome = await self._fetch_and_index(tenant_id, collection, row, report, on_chunks)
        if outcome.state == "failed":
            report.failed.append((row.url, outcome.message))
        else:
            getattr(report, outcome.state).append(row.url)
        await self.database.execute(
            "UPDATE kb_urls SET last_sync_at = :now, status = :s, message = :m,"
            " etag = :e, last_modified = :lm"
            " WHERE tenant_id = :t AND collection_id = :c AND url = :u",
            {
                "now": now_ms(), "s": outcome.status, "m": outcome.message,
                "e": outcome.etag if outcome.state != "failed" else row.etag,
                "lm": outcome.last_modified if outcome.state != "failed" else row.last_modified,
                "t": tenant_id, "c": collection.id, "u": row.url,
            },
        )  # fmt: skip
        return outcome.refused

    async def _fetch_and_index(
        self, tenant_id: str, collection: Collection, row: UrlSource, report: SyncReport,
        on_chunks: ChunkProgress | None,
    ) -> _Outcome:  # fmt: skip
        if self.network is None:
            return _Outcome("failed", "failed", "URL sources are turned off here")
        known = await self.knowledge._source_row(tenant_id, collection, row.url)
        headers = {"Accept": "text/html, text/markdown, text/plain;q=0.9, */*;q=0.1"}
        if known is not None:  # validators only help when the chunks they vouch for exist
            if row.etag:
                headers["If-None-Match"] = row.etag
            if row.last_modified:
                headers["If-Modified-Since"] = row.last_modified
        policy = _capped(self.network)
        try:
            fetched = await fetch(row.url, policy, headers=headers)
        except NetworkRefused as exc:
            return _Outcome("failed", "failed", exc.message, refused=True)
        except ToolFailure as exc:
            return _Outcome("failed", "failed", exc.message)
        lowered = {k.lower(): v for k, v in fetched.headers.items()}
        etag, modified = lowered.get("etag"), lowered.get("last-modified")
        if fetched.status == 304 and known is not None:
            return _Outcome("unchanged", "ok", "", row.etag, row.last_modified)
        if fetched.status in (404, 410):
            if known is not None:
                await self.knowledge._remove(tenant_id, collection, known)
                return _Outcome("removed", "gone", f"HTTP {fetched.status}: chunks removed")
            return _Outcome("failed", "gone", f"HTTP {fetched.status}")
        if fetched.status != 200:
            return _Outcome("failed", "failed", f"HTTP {fetched.status}")
        if fetched.truncated:
            return _Outcome("failed", "failed", f"larger than {policy.max_response_bytes} bytes")
        content_type = lowered.get("content-type", "text/plain").split(";")[0].strip().lower()
        if not content_type.startswith(_TEXT_TYPES):
            return _Outcome("failed", "failed", f"not text: {content_type}")
        digest = hashlib.sha256(fetched.content.encode()).hexdigest()
        extracted = _extract(row.url, content_type, fetched.content)
        meta: dict[str, Any] = {"url": row.url, "content_type": content_type}
        pending = await self.knowledge._prepare(
            tenant_id, collection, row.url, extracted, digest, len(fetched.content.encode()), meta
        )
        if pending is None:
            return _Outcome("unchanged", "ok", "", etag, modified)
        await embed_sources(self.knowledge.embedder, [pending], progress=on_chunks)
        await self.knowledge._write(tenant_id, collection, pending)
        report.num_chunks += len(pending.chunks)
        return _Outcome("added" if pending.is_new else "updated", "ok", "", etag, modified)


def _capped(policy: NetworkPolicy) -> NetworkPolicy:
    """The operator's policy, with bodies bounded like files."""
    from dataclasses import replace

    return replace(policy, max_response_bytes=min(policy.max_response_bytes, MAX_FILE_BYTES))


def _extract(url: str, content_type: str, body: str) -> Extracted:
    path = url.split("?")[0].rstrip("/")
    name = path.rsplit("/", 1)[-1] or url
    if "html" in content_type:
        return extract_html(body, default_title=name)
    if content_type == "text/markdown" or path.endswith((".md", ".markdown")):
        return extract_markdown(body, default_title=name)
    return Extracted(body, "text", name)


def _url(row: dict[str, Any]) -> UrlSource:
    last = row["last_sync_at"]
    return UrlSource(
        str(row["tenant_id"]), str(row["collection_id"]), str(row["url"]), int(row["added_at"]),
        int(last) if last is not None else None, str(row["status"]), str(row["message"]),
        row["etag"], row["last_modified"],
    )  # fmt: skip
