"""``roost kb`` and ``roost memory`` run in-process against a fresh home."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app
from roost.config import load_settings
from roost.memory.service import MemoryServices
from roost.platform import Platform


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.setenv("ROOST_MEMORY__EMBEDDER", "hashing")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(roost_home)
    return CliRunner()


def test_kb_add_search_sync(roost: CliRunner, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "backup.md").write_text("# Backups\n\nSnapshots are taken nightly at 02:00.\n")
    (docs / "install.txt").write_text("Install Roost with make install.\n")
    added = roost.invoke(app, ["kb", "add", str(docs), "-c", "handbook"])
    assert added.exit_code == 0, added.output
    assert "added 2, updated 0, unchanged 0" in added.output
    found = roost.invoke(
        app, ["kb", "search", "when are snapshots taken", "-c", "handbook", "-k", "1"]
    )
    assert found.exit_code == 0, found.output
    assert f"{docs / 'backup.md'} (lines 1-3)" in found.output and "nightly" in found.output
    (docs / "install.txt").write_text("Install Roost with pipx.\n")
    (docs / "backup.md").unlink()
    synced = roost.invoke(app, ["kb", "sync", "-c", "handbook"])
    assert "added 0, updated 1, unchanged 0, removed 1" in synced.output, synced.output
    listed = roost.invoke(app, ["kb", "list"])
    assert "handbook" in listed.output and " 1 " in listed.output
    missing = roost.invoke(app, ["kb", "search", "x", "-c", "nope"])
    assert missing.exit_code == 1 and "no knowledge collection 'nope'" in missing.output
    assert roost.invoke(app, ["kb", "remove", "handbook"]).exit_code == 0


def test_memory_search_lists_an_agents_memories(roost: CliRunner, roost_home: Path) -> None:
    async def seed() -> None:
        settings = load_settings(
            env={"ROOST_HOME": str(roost_home), "ROOST_MEMORY__EMBEDDER": "hashing"}
        )
        platform = await Platform.open(settings)
        memory = await MemoryServices.open(settings, platform.database)
        tenant = await platform.tenants.find_by_name("default")
        assert tenant is not None
        await memory.remember(
            tenant.id, "helper", "The staging database lives on host db-2", importance=0.8
        )
        await memory.close()
        await platform.close()

    asyncio.run(seed())
    result = roost.invoke(app, ["memory", "search", "staging database host", "--agent", "helper"])
    assert result.exit_code == 0, result.output
    assert "db-2" in result.output and "fact" in result.output
    assert "db-2" in roost.invoke(app, ["memory", "list", "-a", "helper"]).output
    assert "db-2" not in roost.invoke(app, ["memory", "list", "-a", "other"]).output
