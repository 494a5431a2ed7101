"""A PostgreSQL home backs up through pg_dump and restores into an empty database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roost.backup.create import BackupOptions, create_backup
from roost.backup.errors import BackupRefused
from roost.backup.restore import restore_backup
from roost.config import Settings, load_settings
from roost.platform import Platform


def settings_for(home: Path, url: str) -> Settings:
    return load_settings(
        env={
            "ROOST_HOME": str(home),
            "ROOST_DATABASE_URL": url,
            "ROOST_MEMORY__EMBEDDER": "hashing",
        }
    )


async def tenants(settings: Settings, create: str | None = None) -> set[str]:
    platform = await Platform.open(settings)
    try:
        if create is not None:
            await platform.tenants.create(create)
        return {t.name for t in await platform.tenants.list()}
    finally:
        await platform.close()


def test_postgres_round_trip_through_pg_dump(
    postgres_server: object, postgres_url: str, tmp_path: Path
) -> None:
    source = settings_for(tmp_path / "a", postgres_url)
    asyncio.run(tenants(source, create="acme"))
    created = create_backup(source, BackupOptions())
    assert [f.role for f in created.manifest.files] == ["database"]
    assert created.manifest.dialect == "postgresql" and created.manifest.schema["core"] >= 1

    empty = settings_for(tmp_path / "b", postgres_server.create_database())  # type: ignore[attr-defined]
    restore_backup(empty, created.path, passphrase=None)
    assert "acme" in asyncio.run(tenants(empty))

    sqlite_home = load_settings(env={"ROOST_HOME": str(tmp_path / "c")})
    with pytest.raises(BackupRefused, match="migrate-store"):
        restore_backup(sqlite_home, created.path, passphrase=None)
