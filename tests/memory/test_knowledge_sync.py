"""Knowledge that stays fresh: a watched folder re-syncs a changed file and a deleted one
as soon as they change, each folder records its last sync, and the server runs it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.config import Settings
from roost.memory.knowledge import SyncReport
from roost.memory.knowledge_sync import KnowledgeSyncer
from roost.memory.service import MemoryServices
from roost.storage import Database
from tests.server.conftest import AppFactory

Reports = asyncio.Queue[tuple[str, str, SyncReport]]


@pytest.fixture
async def memory(settings: Settings) -> AsyncIterator[MemoryServices]:
    settings.memory.embedder = "hashing"
    database = await Database.connect(settings.database_url)
    services = await MemoryServices.open(settings, database)
    try:
        yield services
    finally:
        await services.close()
        await database.close()


async def until(reports: Reports, seen: str, what: str) -> SyncReport:
    """The first sync whose ``what`` list names ``seen`` (bounded: a missed change fails)."""

    async def wait() -> SyncReport:
        while True:
            _, _, report = await reports.get()
            if seen in getattr(report, what):
                return report

    return await asyncio.wait_for(wait(), 60)


async def test_a_watched_folder_resyncs_changed_and_deleted_files(
    memory: MemoryServices, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tides.md").write_text("The tide turns twice a day.\n")
    (folder / "moon.md").write_text("The moon pulls the sea.\n")
    kb = memory.knowledge
    await kb.create_collection("t", "notes")
    await kb.add_path("t", "notes", folder)
    (folder_row,) = await kb.folders.of("t", (await kb.collection("t", "notes")).id)
    assert folder_row.status == "ok" and folder_row.num_files == 2

    reports: Reports = asyncio.Queue()
    syncer = KnowledgeSyncer(
        kb, interval_s=0, refresh_s=3600, on_synced=lambda *r: reports.put_nowait(r)
    )
    syncer.start()
    try:
        await asyncio.wait_for(syncer.watching.wait(), 60)
        (folder / "tides.md").write_text("Spring tides come with the full moon.\n")
        report = await until(reports, str(folder / "tides.md"), "updated")
        assert report.unchanged == [str(folder / "moon.md")]  # only what changed is redone
        hits = await kb.search("t", "notes", "spring tides full moon", k=1)
        assert "Spring tides" in hits[0].text

        (folder / "moon.md").unlink()
        await until(reports, str(folder / "moon.md"), "removed")
        uris = [s.uri for s in await kb.sources("t", "notes")]
        assert uris == [str(folder / "tides.md")]
    finally:
        await syncer.close()
    (after,) = await kb.folders.of("t", (await kb.collection("t", "notes")).id)
    assert after.last_sync_at is not None and after.last_sync_at >= folder_row.last_sync_at  # type: ignore[operator]
    assert after.num_files == 1 and after.status == "ok"


async def test_a_folder_that_disappears_is_reported_missing(
    memory: MemoryServices, tmp_path: Path
) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    (folder / "a.txt").write_text("something")
    kb = memory.knowledge
    await kb.create_collection("t", "c")
    await kb.add_path("t", "c", folder)
    (folder / "a.txt").unlink()
    folder.rmdir()
    report = await kb.sync("t", "c")
    assert report.removed == [str(folder / "a.txt")]
    (row,) = await kb.folders.of("t", (await kb.collection("t", "c")).id)
    assert row.status == "missing"


def test_the_server_syncs_folders_changed_while_it_was_down(
    make_app: AppFactory, auth: dict[str, str], tmp_path: Path
) -> None:
    folder = folder_path = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("Version one of the doc.\n")
    env = {"ROOST_MEMORY__EMBEDDER": "hashing", "ROOST_MEMORY__KNOWLEDGE_WATCH": "false"}

    async def first_start() -> None:
        async with make_app(env=env) as (app, client):
            client.headers.update(auth)
            kb = app.state.memory.knowledge
            await kb.create_collection(app.state.default_tenant_id, "docs")
            await kb.add_path(app.state.default_tenant_id, "docs", folder)

    async def second_start() -> str:
        async with make_app(env=env) as (app, client):
            # The server syncs every folder at start: changes made while it was down.
            await asyncio.wait_for(app.state.kernel.knowledge_syncer.caught_up.wait(), 60)
            folders = await client.get("/v1/knowledge/collections/docs/folders", headers=auth)
            (folder,) = folders.json()["data"]
            assert folder["root"] == str(folder_path) and folder["status"] == "ok"
            (source,) = await app.state.memory.knowledge.sources(
                app.state.default_tenant_id, "docs"
            )
            return str(source.content_hash)

    asyncio.run(first_start())
    (folder / "a.md").write_text("Version two, edited while the server was down.\n")
    assert (
        asyncio.run(second_start())
        == hashlib.sha256(b"Version two, edited while the server was down.\n").hexdigest()
    )
