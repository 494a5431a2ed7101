"""``backup create``: stage the home, write the archive, list what is there.

Synchronous on purpose: the CLI calls it directly and the server's scheduler runs it in
a worker thread, so neither blocks an event loop on SQLite pages or pg_dump.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from roost import __version__
from roost.backup.archive import ENCRYPTED_SUFFIX, PLAIN_SUFFIX, archive_id, write_archive
from roost.backup.errors import BackupRefused
from roost.backup.manifest import Manifest
from roost.backup.snapshot import Staged, Step, stage_home
from roost.config import Settings
from roost.platform.layout import HomeLayout


@dataclass(frozen=True, slots=True)
class BackupOptions:
    with_kv: bool = False
    with_secrets: bool = False
    passphrase: str | None = None
    label: str = ""  # "scheduled" and "safety" archives are named (and pruned) by it
    tenant: str | None = None  # name or id: an export of this tenant alone


@dataclass(frozen=True, slots=True)
class CreatedBackup:
    path: Path
    manifest: Manifest
    skipped: list[str]
    seconds: float

    @property
    def id(self) -> str:
        return archive_id(self.path)


def create_backup(
    settings: Settings, options: BackupOptions, step: Step | None = None
) -> CreatedBackup:
    """Write one archive of the home in ``settings`` to its backup directory."""
    if options.with_secrets and options.passphrase is None:
        raise BackupRefused("--with-secrets needs a passphrase: secrets are only kept encrypted")
    started = time.perf_counter()
    report: Step = step or (lambda _name, _done, _total: None)
    layout = HomeLayout.of(settings)
    layout.backups.mkdir(parents=True, exist_ok=True)
    layout.backups.chmod(0o700)
    # Staged beside the archives: same file system as the home in the usual layout, so
    # KV files are hard links rather than copies.
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=layout.backups))
    try:
        tenant = None
        if options.tenant is not None:
            staged, tenant = _stage_tenant(settings, layout, staging, options, report)
        else:
            staged = stage_home(
                layout,
                staging,
                with_kv=options.with_kv,
                with_secrets=options.with_secrets,
                step=report,
            )
        manifest = Manifest(
            roost_version=__version__,
            created_at_ms=time.time_ns() // 1_000_000,
            dialect=layout.dialect,
            schema=staged.schema,
            with_kv=options.with_kv,
            with_secrets=options.with_secrets,
            encrypted=options.passphrase is not None,
            label=options.label or (f"tenant-{tenant['name']}" if tenant else ""),
            files=staged.files,
            tenant=tenant,
        )
        path = layout.backups / _archive_name(manifest, options.passphrase is not None)
        total, done = manifest.total_bytes, 0

        def advance(nbytes: int) -> None:
            nonlocal done
            done += nbytes
            report("archive", done, total)

        report("archive", 0, total)
        write_archive(
            path, manifest, staged.sources, passphrase=options.passphrase, advance=advance
        )
        path.chmod(0o600)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CreatedBackup(path, manifest, staged.skipped, time.perf_counter() - started)


def _stage_tenant(
    settings: Settings, layout: HomeLayout, staging: Path, options: BackupOptions, report: Step
) -> tuple[Staged, dict[str, str]]:
    import asyncio

    from roost.backup.tenant_export import export_tenant, stage_tenant_files

    assert options.tenant is not None
    report("tenant rows, vectors, checkpoints", 0, 1)
    tenant, files, schema = asyncio.run(export_tenant(settings, options.tenant, staging))
    staged = Staged(schema=schema)
    roles = {
        "rows": "tenant-rows",
        "vectors": "tenant-vectors",
        "checkpoints": "tenant-checkpoints",
    }
    for member, path in files.items():
        staged.add(path, member, roles[member.split("/")[1].split(".")[0]])  # type: ignore[arg-type]
    for member, (path, role) in stage_tenant_files(
        layout, tenant["id"], staging, with_kv=options.with_kv
    ).items():
        staged.add(path, member, role, member.split("/", 1)[1])  # type: ignore[arg-type]
    report("tenant rows, vectors, checkpoints", 1, 1)
    return staged, tenant


def _archive_name(manifest: Manifest, encrypted: bool) -> str:
    stamp = datetime.fromtimestamp(manifest.created_at_ms / 1000, UTC).strftime("%Y%m%dT%H%M%S")
    millis = manifest.created_at_ms % 1000
    label = f"-{manifest.label}" if manifest.label else ""
    suffix = ENCRYPTED_SUFFIX if encrypted else PLAIN_SUFFIX
    return f"roost-{stamp}{millis:03d}Z{label}{suffix}"
