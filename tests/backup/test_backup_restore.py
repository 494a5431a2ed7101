"""Back up a home while its server serves and writes, wipe it, restore it with the CLI:
keys, tenants, agents, threads, runs, checkpoints, memories, knowledge and KV sessions
all come back."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.backup.create import BackupOptions, CreatedBackup, create_backup
from roost.cli.main import app as cli
from tests.backup.helpers import APP_ENV, Filled, check_restored, fill
from tests.server.conftest import AppFactory


def test_backup_while_serving_then_restore_into_a_wiped_home(
    make_app: AppFactory,
    roost_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    without_roost_env: None,
) -> None:
    async def serve_and_back_up() -> tuple[Filled, CreatedBackup, set[str]]:
        async with make_app(env=APP_ENV) as (app, client):
            filled = await fill(app, client, roost_home)
            acme = {"Authorization": f"Bearer {filled.key}"}
            written: set[str] = set(filled.memory_ids)
            done = asyncio.Event()

            async def keep_writing() -> None:
                n = 0
                while not done.is_set():
                    n += 1
                    reply = await client.post(
                        "/v1/memory/agents/helper/memories",
                        json={"text": f"note {n}"},
                        headers=acme,
                    )
                    assert reply.status_code == 201, reply.text
                    written.add(reply.json()["id"])

            writer = asyncio.create_task(keep_writing())
            options = BackupOptions(with_kv=True)
            settings = app.state.platform.settings
            created = await asyncio.to_thread(create_backup, settings, options)
            done.set()
            await writer
            return filled, created, written

    filled, created, written = asyncio.run(serve_and_back_up())
    assert created.manifest.schema["core"] >= 1
    roles = {f.role for f in created.manifest.files}
    assert {"database", "runs", "checkpoints", "vectors", "kv"} <= roles

    kept = tmp_path / "kept" / created.path.name
    kept.parent.mkdir()
    shutil.move(created.path, kept)
    shutil.rmtree(roost_home)
    roost_home.mkdir()

    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    result = CliRunner().invoke(cli, ["backup", "restore", str(kept)])
    assert result.exit_code == 0, result.output
    assert "restored" in result.output

    async def check() -> set[str]:
        async with make_app(env=APP_ENV) as (app, client):
            await check_restored(app, client, roost_home, filled)
            listed = await client.get(
                "/v1/memory/agents/helper/memories?limit=1000",
                headers={"Authorization": f"Bearer {filled.key}"},
            )
            return {m["id"] for m in listed.json()["data"]}

    restored = asyncio.run(check())
    # One committed state: every memory restored was written, none invented or torn.
    assert restored <= written and set(filled.memory_ids) <= restored
