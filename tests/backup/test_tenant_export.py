"""One tenant out of a home and into another that has tenants of its own: keys, agents,
threads, runs, checkpoints, memories, knowledge and KV sessions come along."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.backup.errors import BackupRefused
from roost.backup.restore import restore_backup
from roost.backup.verify import verify_archive
from roost.cli.main import app as cli
from roost.config import load_settings
from tests.backup.helpers import APP_ENV, Filled, check_restored, fill
from tests.server.conftest import AppFactory


def test_a_tenant_moves_into_another_home(
    make_app: AppFactory,
    roost_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    without_roost_env: None,
) -> None:
    async def fill_source() -> Filled:
        async with make_app(env=APP_ENV) as (app, client):
            filled = await fill(app, client, roost_home)
            await app.state.platform.tenants.create("stays-behind")
            return filled

    filled = asyncio.run(fill_source())
    for name, value in {"ROOST_HOME": str(roost_home), **APP_ENV}.items():
        monkeypatch.setenv(name, value)
    made = CliRunner().invoke(cli, ["backup", "create", "--tenant", "acme", "--with-kv", "--json"])
    assert made.exit_code == 0, made.output
    archive = Path(json.loads(made.output)["path"])
    created = verify_archive(archive, None)
    assert created.tenant == {"id": filled.tenant_id, "name": "acme"}
    assert archive.name.endswith("-tenant-acme.tar.gz")

    other = tmp_path / "other-home"
    other.mkdir()

    async def start_other() -> None:
        # A home with data of its own (its default tenant, its keys): an export only adds.
        async with make_app(env={**APP_ENV, "ROOST_HOME": str(other)}) as (app, _):
            await app.state.platform.tenants.create("locals")

    asyncio.run(start_other())
    target = load_settings(env={"ROOST_HOME": str(other), **APP_ENV})
    restored = restore_backup(target, archive, passphrase=None)
    assert restored.notes == ["added tenant 'acme'"]

    async def check() -> set[str]:
        async with make_app(env={**APP_ENV, "ROOST_HOME": str(other)}) as (app, client):
            await check_restored(app, client, other, filled)
            return {t.name for t in await app.state.platform.tenants.list()}

    names = asyncio.run(check())
    assert {"acme", "locals", "default"} <= names and "stays-behind" not in names

    with pytest.raises(BackupRefused, match="already has tenant 'acme'"):
        restore_backup(target, archive, passphrase=None)
