"""Web pages as knowledge sources: fetched from a real HTTP server on loopback (exempted
for the test, as an operator would exempt an intranet), re-synced with conditional
requests, incrementally by content hash, deletions propagated; refused where the SSRF
guard says no."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from roost.config import load_settings
from roost.errors import InvalidRequest
from roost.llm.embeddings import HashingEmbedder
from roost.memory.chunking import ChunkingPolicy
from roost.memory.knowledge import KnowledgeBase, SyncReport
from roost.memory.knowledge_sync import KnowledgeSyncer
from roost.memory.schema import MEMORY_MIGRATIONS
from roost.memory.sqlite_store import SqliteVectorStore
from roost.server.app import create_app
from roost.storage import Database, migrate
from roost.tools.netguard import NetworkPolicy

LOOPBACK_ALLOWED = NetworkPolicy(allowed_networks=("127.0.0.0/8",))


@dataclass
class Page:
    body: str
    etag: str | None = None
    content_type: str = "text/html; charset=utf-8"
    status: int = 200


@dataclass
class Site:
    """What the test server serves, and what it was asked."""

    pages: dict[str, Page] = field(default_factory=dict)
    log: list[tuple[str, int]] = field(default_factory=list)  # path, status sent
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with served.lock:
                page = served.pages.get(self.path)
            if page is None or page.status != 200:
                self._send(page.status if page else 404, b"", None, "text/plain")
            elif page.etag is not None and self.headers.get("If-None-Match") == page.etag:
                self._send(304, b"", page.etag, page.content_type)
            else:
                self._send(200, page.body.encode(), page.etag, page.content_type)

        def _send(self, status: int, body: bytes, etag: str | None, content_type: str) -> None:
            with served.lock:
                served.log.append((self.path, status))
            self.send_response(status)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


async def _kb(tmp_path: Path, network: NetworkPolicy | None) -> KnowledgeBase:
    database = await Database.connect(f"sqlite:///{tmp_path / 'roost.db'}")
    await migrate(database, MEMORY_MIGRATIONS)
    embedder = HashingEmbedder(64)
    store = SqliteVectorStore(tmp_path / "memory.db", embedder_id=embedder.id, dimension=64)
    return KnowledgeBase(
        database, store, embedder, policy=ChunkingPolicy(max_tokens=60, overlap_tokens=8),
        network=network,
    )  # fmt: skip


@pytest.fixture
async def kb(tmp_path: Path) -> AsyncIterator[KnowledgeBase]:
    knowledge = await _kb(tmp_path, LOOPBACK_ALLOWED)
    yield knowledge
    await knowledge.store.close()
    await knowledge.database.close()


PAGE = (
    "<html><head><title>Opening hours</title><script>var tracking = 1;</script></head>"
    "<body><nav>Home | About</nav><h1>Opening hours</h1>"
    "<p>The greenhouse opens at nine on weekdays.</p></body></html>"
)


async def test_url_source_syncs_conditionally_and_propagates_changes(
    kb: KnowledgeBase, site: Site
) -> None:
    url = f"{site.base}/hours.html"
    site.pages["/hours.html"] = Page(PAGE, etag='"v1"')
    await kb.create_collection("t1", "web")
    report = await kb.add_url("t1", "web", url)
    assert report.added == [url] and report.num_chunks >= 1
    hit = (await kb.search("t1", "web", "greenhouse opens", mode="keyword"))[0]
    assert hit.uri == url and hit.title == "Opening hours" and "tracking" not in hit.text
    [row] = await kb.urls.of("t1", (await kb.collection("t1", "web")).id)
    assert (row.status, row.etag) == ("ok", '"v1"') and row.last_sync_at is not None

    # Unchanged: the server answers 304 to the validator, nothing is embedded.
    again = await kb.sync("t1", "web")
    assert again.unchanged == [url] and again.num_chunks == 0
    assert site.log[-1] == ("/hours.html", 304)

    # A new ETag but the same body: fetched in full, but the hash says unchanged.
    site.pages["/hours.html"] = Page(PAGE, etag='"v1-gzip"')
    same = await kb.sync("t1", "web")
    assert same.unchanged == [url] and same.num_chunks == 0 and site.log[-1][1] == 200

    # Changed: re-indexed by the server's syncer (a collection with URLs and no folder), the
    # old text gone.
    site.pages["/hours.html"] = Page(PAGE.replace("nine", "ten"), etag='"v2"')
    outcomes: list[SyncReport] = []
    syncer = KnowledgeSyncer(
        kb, interval_s=0, watch=False, on_synced=lambda t, c, r: outcomes.append(r)
    )
    await syncer.sync_all()
    [changed] = outcomes
    assert changed.updated == [url] and changed.num_chunks >= 1
    assert await kb.search("t1", "web", "nine", mode="keyword") == []
    assert (await kb.search("t1", "web", "ten", mode="keyword"))[0].uri == url

    # Gone: 410 removes the chunks; the URL stays listed as gone.
    site.pages["/hours.html"] = Page("", status=410)
    gone = await kb.sync("t1", "web")
    assert gone.removed == [url]
    assert await kb.search("t1", "web", "greenhouse", mode="keyword") == []
    [row] = await kb.urls.of("t1", (await kb.collection("t1", "web")).id)
    assert row.status == "gone" and "410" in row.message

    # A server error keeps the last good chunks and says why.
    site.pages["/hours.html"] = Page(PAGE, etag='"v3"')
    assert (await kb.sync("t1", "web")).added == [url]
    site.pages["/hours.html"] = Page("", status=503)
    failed = await kb.sync("t1", "web")
    assert failed.failed == [(url, "HTTP 503")]
    assert (await kb.search("t1", "web", "greenhouse", mode="keyword"))[0].uri == url


async def test_plain_text_and_markdown_pages_and_binary_refused(
    kb: KnowledgeBase, site: Site
) -> None:
    site.pages["/notes.md"] = Page("# Notes\n\nCompost weekly.", content_type="text/markdown")
    site.pages["/logo.png"] = Page("PNG", content_type="image/png")
    await kb.create_collection("t1", "web")
    assert (await kb.add_url("t1", "web", f"{site.base}/notes.md")).added
    assert (await kb.search("t1", "web", "compost", mode="keyword"))[0].title == "Notes"
    refused = await kb.add_url("t1", "web", f"{site.base}/logo.png")
    assert refused.failed == [(f"{site.base}/logo.png", "not text: image/png")]


async def test_loopback_and_private_addresses_refused_unless_allowed(
    tmp_path: Path, site: Site
) -> None:
    async def intranet(host: str, port: int) -> list[str]:
        return ["10.20.30.40"]

    site.pages["/hours.html"] = Page(PAGE)
    kb = await _kb(tmp_path, NetworkPolicy(resolver=None))
    try:
        await kb.create_collection("t1", "web")
        with pytest.raises(InvalidRequest, match="loopback"):
            await kb.add_url("t1", "web", f"{site.base}/hours.html")
        assert site.log == []  # never connected
        kb.urls.network = NetworkPolicy(resolver=intranet)
        with pytest.raises(InvalidRequest, match="private address"):
            await kb.add_url("t1", "web", "http://wiki.corp.example/page")
        assert await kb.urls.of("t1", (await kb.collection("t1", "web")).id) == []  # not kept
        with pytest.raises(InvalidRequest, match="only http and https"):
            await kb.add_url("t1", "web", "file:///etc/passwd")
        kb.urls.network = None  # a deployment with URL sources turned off
        with pytest.raises(InvalidRequest, match="turned off"):
            await kb.add_url("t1", "web", f"{site.base}/hours.html")
    finally:
        await kb.store.close()
        await kb.database.close()


async def test_urls_over_http_with_streamed_sync_and_tenant_isolation(
    roost_home: Path, site: Site
) -> None:
    site.pages["/hours.html"] = Page(PAGE, etag='"v1"')
    key = "url-test-key-0123456789abcdef"
    settings = load_settings(
        env={
            "ROOST_HOME": str(roost_home), "ROOST_API_KEY": key, "ROOST_ENGINE__ENABLED": "false",
            "ROOST_MEMORY__EMBEDDER": "hashing", "ROOST_MEMORY__CONSOLIDATION_INTERVAL_S": "0",
            "ROOST_MEMORY__KNOWLEDGE_SYNC_INTERVAL_S": "0", "ROOST_MEMORY__KNOWLEDGE_WATCH": "false",
            "ROOST_TOOLS__HTTP_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        }
    )  # fmt: skip
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        platform = app.state.platform
        stranger_tenant = await platform.tenants.create("other")
        _, other = await platform.api_keys.create(stranger_tenant.id, "theirs")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://roost", headers={"Authorization": f"Bearer {key}"}
        ) as client:
            assert (
                await client.post("/v1/knowledge/collections", json={"name": "web"})
            ).status_code == 201
            url = f"{site.base}/hours.html"
            r = await client.post("/v1/knowledge/collections/web/urls", json={"url": url})
            assert r.status_code == 200 and r.json()["added"] == [url], r.text
            bad = await client.post(
                "/v1/knowledge/collections/web/urls", json={"url": "gopher://x"}
            )
            assert bad.status_code == 400
            assert bad.headers["content-type"].startswith("application/problem+json")
            listed = (await client.get("/v1/knowledge/collections/web/urls")).json()["data"]
            assert [(u["url"], u["status"], u["etag"]) for u in listed] == [(url, "ok", '"v1"')]
            site.pages["/hours.html"] = Page(PAGE.replace("nine", "ten"), etag='"v2"')
            async with client.stream("POST", "/v1/knowledge/collections/web/sync?stream=true") as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                events = [
                    line async for line in r.aiter_lines() if line.startswith(("event:", "data:"))
                ]
            names = [e.split(": ", 1)[1] for e in events if e.startswith("event:")]
            assert "embedding" in names and names[-1] == "done"
            done = json.loads(events[-1].split(": ", 1)[1])
            assert done["updated"] == [url] and done["num_chunks"] >= 1
            stranger = {"Authorization": f"Bearer {other}"}
            r = await client.get("/v1/knowledge/collections/web/urls", headers=stranger)
            assert r.status_code == 404
            r = await client.post(
                "/v1/knowledge/collections/web/urls", json={"url": url}, headers=stranger
            )
            assert r.status_code == 404
