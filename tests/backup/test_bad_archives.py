"""Archives that must not be restored: tampered, truncated, from a newer schema, into a
home that holds data, or encrypted under another passphrase. Each is refused with a
non-zero exit that says why, and the target home is left exactly as it was."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.backup.create import BackupOptions, create_backup
from roost.backup.errors import ArchiveCorrupt
from roost.backup.verify import verify_archive
from roost.cli.main import app as cli
from roost.config import Settings, load_settings
from roost.platform import Platform, bootstrap

SECRET = "sk-very-secret-provider-key-0123"


def make_home(home: Path, *, tenant: str = "acme") -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    (home / "roost.toml").write_text(
        f'[llm.providers.openai]\napi_key = "{SECRET}"\n\n[server]\nport = 8123\n'
    )
    settings = load_settings(home / "roost.toml", env={"ROOST_HOME": str(home)})

    async def fill() -> None:
        platform = await Platform.open(settings)
        try:
            await bootstrap(platform)
            await platform.tenants.create(tenant)
        finally:
            await platform.close()

    asyncio.run(fill())
    return settings


def rewrite(archive: Path, change: dict[str, bytes]) -> None:
    """Replace members' bytes in a plain archive, keeping the rest: what a tamperer does."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w|") as tar,
    ):
        for info, data in members:
            data = change.get(info.name, data)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(buffer.getvalue())


def snapshot(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, without_roost_env: None) -> CliRunner:
    return CliRunner()


def restore_into(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, home: Path, archive: Path, *extra: str
):
    monkeypatch.setenv("ROOST_HOME", str(home))
    monkeypatch.chdir(home.parent)
    return runner.invoke(cli, ["backup", "restore", str(archive), *extra])


def test_a_tampered_file_is_named_and_the_home_untouched(
    tmp_path: Path, cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = create_backup(make_home(tmp_path / "source"), BackupOptions()).path
    with tarfile.open(archive, "r:gz") as tar:
        database = tar.extractfile("data/database.db").read()  # type: ignore[union-attr]
    rewrite(archive, {"data/database.db": database[:-1] + bytes([database[-1] ^ 0xFF])})

    monkeypatch.setenv("ROOST_HOME", str(tmp_path / "source"))
    verified = cli_env.invoke(cli, ["backup", "verify", str(archive)])
    assert verified.exit_code == 1
    assert "checksum mismatch for data/database.db" in verified.output

    target = tmp_path / "target"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    before = snapshot(target)
    restored = restore_into(cli_env, monkeypatch, target, archive)
    assert restored.exit_code == 1
    assert "data/database.db" in restored.output
    assert snapshot(target) == before
    assert not list(tmp_path.glob(".roost-restore-*"))  # staging cleaned up


def test_a_truncated_archive_is_refused_naming_where_it_breaks_off(tmp_path: Path) -> None:
    settings = make_home(tmp_path / "source")
    workspace = tmp_path / "source" / "workspaces" / "acme" / "notes.bin"
    workspace.parent.mkdir(parents=True)
    workspace.write_bytes(os.urandom(512 * 1024))  # incompressible: the archive's last half
    archive = create_backup(settings, BackupOptions()).path
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(ArchiveCorrupt) as refused:
        verify_archive(archive, None)
    assert refused.value.path == "workspace/acme/notes.bin"
    assert "truncated at workspace/acme/notes.bin" in refused.value.message


def test_an_archive_from_a_newer_schema_is_refused(
    tmp_path: Path, cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = create_backup(make_home(tmp_path / "source"), BackupOptions()).path
    with tarfile.open(archive, "r:gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    manifest["schema"]["core"] = 999
    manifest["roost_version"] = "9.0.0"
    rewrite(archive, {"manifest.json": json.dumps(manifest).encode()})

    target = tmp_path / "target"
    target.mkdir()
    restored = restore_into(cli_env, monkeypatch, target, archive)
    assert restored.exit_code == 1
    assert "newer Roost schema: core v999" in restored.output
    assert list(target.iterdir()) == []


def test_a_home_with_data_is_refused_unless_forced_after_a_safety_backup(
    tmp_path: Path, cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = create_backup(
        make_home(tmp_path / "source", tenant="from-archive"), BackupOptions()
    ).path
    target = tmp_path / "target"
    make_home(target, tenant="already-here")
    before = snapshot(target)

    refused = restore_into(cli_env, monkeypatch, target, archive)
    assert refused.exit_code == 1
    assert "already holds data" in refused.output and "--force" in refused.output
    assert snapshot(target) == before

    forced = restore_into(cli_env, monkeypatch, target, archive, "--force")
    assert forced.exit_code == 0, forced.output
    assert "safety backup of the replaced home" in forced.output

    async def tenant_names(settings: Settings) -> set[str]:
        platform = await Platform.open(settings)
        try:
            return {t.name for t in await platform.tenants.list()}
        finally:
            await platform.close()

    settings = load_settings(env={"ROOST_HOME": str(target)})
    assert "from-archive" in asyncio.run(tenant_names(settings))
    # The safety backup holds the replaced home: restoring it elsewhere brings it back.
    (safety,) = (target / "backups").glob("*-safety.tar.gz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert restore_into(cli_env, monkeypatch, elsewhere, safety).exit_code == 0
    assert "already-here" in asyncio.run(
        tenant_names(load_settings(env={"ROOST_HOME": str(elsewhere)}))
    )


def test_secrets_stay_out_of_plain_archives_and_travel_encrypted(
    tmp_path: Path, cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_home(tmp_path / "source")
    plain = create_backup(settings, BackupOptions()).path
    with tarfile.open(plain, "r:gz") as tar:
        config = tar.extractfile("config/roost.toml").read().decode()  # type: ignore[union-attr]
    assert SECRET not in config and "port = 8123" in config

    encrypted = create_backup(
        settings, BackupOptions(with_secrets=True, passphrase="correct horse")
    ).path
    assert SECRET.encode() not in encrypted.read_bytes()
    with pytest.raises(ArchiveCorrupt, match="wrong passphrase"):
        verify_archive(encrypted, "wrong horse")

    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse\n")
    target = tmp_path / "target"
    target.mkdir()
    restored = restore_into(
        cli_env, monkeypatch, target, encrypted, "--passphrase-file", str(passphrase)
    )
    assert restored.exit_code == 0, restored.output
    assert SECRET in (target / "roost.toml").read_text()
    assert (target / "agent-webhook.key").exists() == (
        tmp_path / "source" / "agent-webhook.key"
    ).exists()
