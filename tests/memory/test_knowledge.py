"""Knowledge base: extraction, chunking, ingestion, incremental re-sync and cited search."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from roost.errors import Conflict, NotFound
from roost.llm.embeddings import HashingEmbedder
from roost.memory.chunking import ChunkingPolicy, chunk_text, line_of
from roost.memory.extract import extract_html, extract_pdf
from roost.memory.knowledge import KnowledgeBase
from roost.memory.schema import MEMORY_MIGRATIONS
from roost.memory.sqlite_store import SqliteVectorStore
from roost.memory.vector_store import VectorItem
from roost.storage import Database, migrate


def make_pdf(pages: Sequence[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (correct xref)."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R"
            f" /Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


class FlakyStore(SqliteVectorStore):
    fail_after = -1  # upserts allowed before one fails

    async def upsert(self, tenant_id: str, items: Sequence[VectorItem]) -> None:
        if self.fail_after == 0:
            self.fail_after = -1
            raise OSError("disk vanished mid-ingestion")
        self.fail_after -= 1
        await super().upsert(tenant_id, items)


@pytest.fixture
async def kb(tmp_path: Path) -> AsyncIterator[KnowledgeBase]:
    database = await Database.connect(f"sqlite:///{tmp_path / 'roost.db'}")
    await migrate(database, MEMORY_MIGRATIONS)
    embedder = HashingEmbedder(128)
    store = FlakyStore(tmp_path / "memory.db", embedder_id=embedder.id, dimension=128)
    yield KnowledgeBase(
        database, store, embedder, policy=ChunkingPolicy(max_tokens=60, overlap_tokens=10)
    )
    await store.close()
    await database.close()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "guide").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config.txt").write_text("hidden internals never indexed")
    (root / "README.md").write_text(
        "# Roost handbook\n\nIntro paragraph about agents.\n\n## Backups\n\n"
        "Run the backup command every night. Snapshots go to the cold tier.\n"
    )
    (root / "guide" / "install.txt").write_text(
        "Install with make install.\n\nThen run make run.\n"
    )
    (root / "guide" / "page.html").write_text(
        "<html><head><title>Tuning</title><style>p{color:red}</style></head><body>"
        "<h1>Tuning</h1><p>Raise the kv cache budget for long chats.</p><script>var x=1;</script>"
        "</body></html>"
    )
    (root / "guide" / "tool.py").write_text(
        "import os\n\n\ndef rotate_logs(path):\n    '''Rotate log files nightly.'''\n    return os.listdir(path)\n"
    )
    (root / "guide" / "manual.pdf").write_bytes(
        make_pdf(["Chapter one covers setup.", "Chapter two explains quotas."])
    )
    (root / "image.png").write_bytes(b"\x89PNG not text")
    return root


async def test_add_folder_then_search_with_citations(kb: KnowledgeBase, docs: Path) -> None:
    await kb.create_collection("t1", "handbook")
    seen: list[tuple[int, int]] = []
    report = await kb.add_path("t1", "handbook", docs, progress=lambda d, t, _: seen.append((d, t)))
    assert len(report.added) == 5 and report.failed == [] and report.num_chunks >= 5
    assert seen[-1] == (5, 5)
    hits = await kb.search("t1", "handbook", "nightly backup snapshots", k=3)
    top = hits[0]
    assert top.uri == str(docs / "README.md") and "backup command" in top.text
    assert top.citation.startswith(f"{docs / 'README.md'} (lines ")
    source_text = (docs / "README.md").read_text()
    assert source_text[top.start : top.end] == top.text
    assert top.line_start == line_of(source_text, top.start) and top.line_end >= top.line_start
    pdf_hit = (await kb.search("t1", "handbook", "quotas chapter two", k=1))[0]
    assert (pdf_hit.page, pdf_hit.page_end) == (1, 2) and pdf_hit.citation.endswith("(pp. 1-2)")
    html_hit = (await kb.search("t1", "handbook", "kv cache budget", k=1))[0]
    assert (
        html_hit.title == "Tuning" and "color" not in html_hit.text and "var x" not in html_hit.text
    )
    code_hit = (await kb.search("t1", "handbook", "rotate logs", k=1))[0]
    assert "def rotate_logs" in code_hit.text and (code_hit.line_start, code_hit.line_end) == (1, 6)
    assert await kb.search("t1", "handbook", "hidden internals", mode="keyword") == []
    with pytest.raises(NotFound):
        await kb.search("t2", "handbook", "backup")


async def test_resync_reindexes_changed_and_removes_deleted(kb: KnowledgeBase, docs: Path) -> None:
    await kb.create_collection("t1", "handbook")
    await kb.add_path("t1", "handbook", docs)
    (docs / "guide" / "install.txt").write_text("Install with pipx install roost.\n")
    (docs / "guide" / "tool.py").unlink()
    (docs / "guide" / "new.md").write_text("# FAQ\n\nQuotas reset monthly.\n")
    report = await kb.sync("t1", "handbook")
    assert report.updated == [str(docs / "guide" / "install.txt")]
    assert report.removed == [str(docs / "guide" / "tool.py")]
    assert report.added == [str(docs / "guide" / "new.md")]
    assert len(report.unchanged) == 3
    assert await kb.search("t1", "handbook", "rotate_logs", mode="keyword") == []
    assert await kb.search("t1", "handbook", "make", mode="keyword") == []  # old install.txt
    assert (await kb.search("t1", "handbook", "pipx", mode="keyword"))[0].uri.endswith(
        "install.txt"
    )
    again = await kb.sync("t1", "handbook")
    assert again.num_chunks == 0 and again.added == again.updated == again.removed == []


async def test_crash_mid_ingestion_is_repaired_by_the_next_sync(
    kb: KnowledgeBase, docs: Path
) -> None:
    assert isinstance(kb.store, FlakyStore)
    await kb.create_collection("t1", "handbook")
    kb.store.fail_after = 2
    report = await kb.add_path("t1", "handbook", docs)
    assert len(report.failed) == 1 and len(report.added) == 4
    repaired = await kb.sync("t1", "handbook")
    assert repaired.added == [report.failed[0][0]]
    sources = await kb.sources("t1", "handbook")
    assert len(sources) == 5
    total = sum(s.num_chunks for s in sources)
    assert await kb.store.count("t1", f"kb:{(await kb.collection('t1', 'handbook')).id}") == total


async def test_raw_text_collections_and_deletion(kb: KnowledgeBase) -> None:
    await kb.create_collection("t1", "notes", "scratch")
    with pytest.raises(Conflict):
        await kb.create_collection("t1", "notes")
    assert await kb.add_text("t1", "notes", "note://1", "The launch is on Friday.") == "added"
    assert await kb.add_text("t1", "notes", "note://1", "The launch is on Friday.") == "unchanged"
    assert await kb.add_text("t1", "notes", "note://1", "The launch moved to Monday.") == "updated"
    hits = await kb.search("t1", "notes", "launch day")
    assert [h.text for h in hits] == ["The launch moved to Monday."]
    await kb.remove_source("t1", "notes", "note://1")
    assert await kb.search("t1", "notes", "launch") == []
    await kb.delete_collection("t1", "notes")
    assert await kb.list_collections("t1") == []


def test_chunks_fit_budget_overlap_and_keep_offsets() -> None:
    text = "\n\n".join(f"Paragraph {i} says something specific about topic {i}." for i in range(40))
    chunks = chunk_text(text, policy=ChunkingPolicy(max_tokens=40, overlap_tokens=12))
    assert len(chunks) > 5
    assert all(c.tokens <= 40 and text[c.start : c.end] == c.text for c in chunks)
    assert all(b.start < a.end for a, b in itertools.pairwise(chunks))  # overlap
    assert chunks[-1].end == len(text)
    run_on = "word " * 500
    assert all(c.tokens <= 40 for c in chunk_text(run_on, policy=ChunkingPolicy(40, 8)))


def test_python_chunks_follow_functions() -> None:
    code = "".join(f"def f{i}(x):\n    return x * {i} + {'1' * 30}\n\n\n" for i in range(12))
    chunks = chunk_text(
        code, policy=ChunkingPolicy(max_tokens=50, overlap_tokens=0), language="python"
    )
    assert all(c.text.startswith("def f") for c in chunks)


def test_extractors() -> None:
    html = extract_html("<title>T</title><h2>Head</h2><p>a &amp; b</p><script>x</script>")
    assert html.title == "T" and html.text == "## Head\n\na & b"
    pdf = extract_pdf(make_pdf(["One", "Two"]))
    assert pdf.text == "One\n\nTwo" and pdf.page_starts == [0, 5]
