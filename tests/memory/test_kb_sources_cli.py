"""``roost kb sources``: each folder's last sync and status, each source's last indexing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from roost.cli.main import app
from tests.memory.test_cli import roost  # noqa: F401 - the CLI fixture of this package


def test_kb_sources_shows_folders_with_their_last_sync_and_status(
    roost: CliRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Alpha notes.\n")
    (docs / "b.md").write_text("Beta notes.\n")
    assert roost.invoke(app, ["kb", "add", str(docs), "-c", "notes"]).exit_code == 0

    shown = roost.invoke(app, ["kb", "sources", "notes", "--json"])
    assert shown.exit_code == 0, shown.output
    listing = json.loads(shown.output)
    (folder,) = listing["folders"]
    assert folder["root"] == str(docs) and folder["status"] == "ok" and folder["num_files"] == 2
    assert folder["last_sync_at"] is not None
    assert [s["uri"] for s in listing["sources"]] == [str(docs / "a.md"), str(docs / "b.md")]

    (docs / "b.md").unlink()
    (docs / "a.md").unlink()
    docs.rmdir()
    assert roost.invoke(app, ["kb", "sync", "-c", "notes"]).exit_code == 0
    table = roost.invoke(app, ["kb", "sources", "notes"])
    assert table.exit_code == 0, table.output
    assert "missing" in table.output and "no longer exists" in table.output
