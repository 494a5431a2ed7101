"""``backup restore``: unpack and check everything first, touch the home last.

1. Every member is extracted to a staging directory *beside* the home and checked
   against the manifest; a bad archive stops here and the home is untouched.
2. The archive must come from a schema this Roost knows (no downgrades) and the same
   kind of store (SQLite or PostgreSQL; ``roost migrate-store`` moves between them).
3. A home that holds data is refused, unless ``force``: then a safety backup of it is
   made first, and its id is reported.
4. Files move into place, PostgreSQL is restored with pg_restore, and every component
   is migrated forward to this Roost's schema.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from roost.backup.archive import read_archive
from roost.backup.create import BackupOptions, CreatedBackup, create_backup
from roost.backup.errors import BackupRefused
from roost.backup.manifest import FileEntry, Manifest
from roost.backup.snapshot import Step
from roost.backup.verify import newer_schema
from roost.config import Settings
from roost.platform.layout import HomeLayout, postgres_tool

_COPY_BYTES = 1 << 20
# Rows in these tables do not make a home "hold data": every start writes them.
_BOOKKEEPING = ("roost_schema_migrations", "tenants", "dbos_migrations")


@dataclass(slots=True)
class Restored:
    manifest: Manifest
    safety_backup: CreatedBackup | None
    notes: list[str] = field(default_factory=list)


def restore_backup(
    settings: Settings,
    archive: Path,
    *,
    passphrase: str | None,
    force: bool = False,
    step: Step | None = None,
) -> Restored:
    report: Step = step or (lambda _name, _done, _total: None)
    layout = HomeLayout.of(settings)
    layout.home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".roost-restore-", dir=layout.home.parent))
    try:
        manifest = _extract(archive, passphrase, staging, report)
        if manifest.agent is not None:
            raise BackupRefused(
                f"{archive.name} is an export of one agent: add it with `roost backup import`"
            )
        if manifest.tenant is not None:
            return _add_tenant(settings, layout, manifest, staging, report)
        _check_compatible(manifest, layout)
        safety = None
        held = holds_data(layout)
        if held:
            if not force:
                raise BackupRefused(
                    f"{layout.home} already holds data ({held[0]}): restore into an empty"
                    " home, or pass --force to replace it after a safety backup"
                )
            safety = create_backup(
                settings, BackupOptions(with_kv=layout.kv.is_dir(), label="safety"), report
            )
        notes = _place(manifest, staging, layout, report)
        report("migrate", 0, 1)
        asyncio.run(_migrate_forward(settings))
        report("migrate", 1, 1)
        return Restored(manifest, safety, notes)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _add_tenant(
    settings: Settings, layout: HomeLayout, manifest: Manifest, staging: Path, report: Step
) -> Restored:
    """A tenant export adds the tenant to this home, whichever backend either side uses."""
    from roost.backup.tenant_export import import_tenant, place_tenant_kv

    assert manifest.tenant is not None
    newer = newer_schema(manifest)
    if newer:
        raise BackupRefused("the archive comes from a newer Roost schema: " + ", ".join(newer))
    report("add tenant", 0, 1)
    asyncio.run(import_tenant(settings, staging, manifest.tenant))
    if (staging / "workspace").is_dir():
        shutil.copytree(staging / "workspace", layout.workspaces, dirs_exist_ok=True)
    if (staging / "kv").is_dir():
        place_tenant_kv(layout, staging / "kv")
    report("add tenant", 1, 1)
    return Restored(manifest, None, [f"added tenant {manifest.tenant['name']!r}"])


def _extract(archive: Path, passphrase: str | None, staging: Path, report: Step) -> Manifest:
    with read_archive(archive, passphrase) as (manifest, members):
        total, done = manifest.total_bytes, 0
        for member in members:
            target = staging / member.entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                while chunk := member.stream.read(_COPY_BYTES):
                    out.write(chunk)
                    done += len(chunk)
                    report("unpack and check", done, total)
    return manifest


def _check_compatible(manifest: Manifest, layout: HomeLayout) -> None:
    newer = newer_schema(manifest)
    if newer:
        raise BackupRefused(
            "the archive comes from a newer Roost schema: " + ", ".join(newer)
            + f" (made by Roost {manifest.roost_version}); upgrade Roost to restore it"
        )  # fmt: skip
    if manifest.dialect != layout.dialect:
        raise BackupRefused(
            f"the archive holds a {manifest.dialect} store and this home uses {layout.dialect}:"
            f" restore into a {manifest.dialect} home, then `roost migrate-store`"
        )


def holds_data(layout: HomeLayout) -> list[str]:
    """What makes the home non-empty (empty list: nothing worth a safety backup)."""
    found: list[str] = []
    for role, path in layout.sqlite_files().items():
        if path.exists() and _sqlite_has_rows(path):
            found.append(f"{role} database {path}")
    if layout.postgres_url is not None and _postgres_has_rows(layout.postgres_url):
        found.append("rows in the PostgreSQL database")
    for name, root in (("KV cache files", layout.kv), ("workspace files", layout.workspaces)):
        if root.is_dir() and any(p.is_file() and p.name != ".secret" for p in root.rglob("*")):
            found.append(f"{name} under {root}")
    return found


def _sqlite_has_rows(path: Path) -> bool:
    # Looking must not touch: a read-only open of a WAL database still creates its -shm
    # and -wal files, unless it is opened immutable, which is exact when no -wal exists.
    has_wal = path.with_name(path.name + "-wal").exists()
    mode = "mode=ro" if has_wal else "immutable=1"
    with closing(sqlite3.connect(f"file:{path}?{mode}", uri=True)) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE"
                " 'CREATE VIRTUAL%' AND name NOT LIKE 'sqlite_%'"
            )
            if name not in _BOOKKEEPING
        ]
        for table in tables:
            try:
                if conn.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None:
                    return True
            except sqlite3.OperationalError:
                continue  # a table of an extension this connection has not loaded
    return False


def _postgres_has_rows(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            if table in _BOOKKEEPING:
                continue
            row = conn.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone()
            if row is not None:
                return True
    return False


def _place(manifest: Manifest, staging: Path, layout: HomeLayout, report: Step) -> list[str]:
    notes: list[str] = []
    by_role: dict[str, list[FileEntry]] = {}
    for entry in manifest.files:
        by_role.setdefault(entry.role, []).append(entry)
    layout.home.mkdir(parents=True, exist_ok=True)
    sqlite_targets = layout.sqlite_files()
    for entry in manifest.files:
        staged = staging / entry.path
        if entry.role == "database" and layout.dialect == "postgresql":
            assert layout.postgres_url is not None
            report("database (pg_restore)", 0, 1)
            _pg_restore(layout.postgres_url, staged)
            report("database (pg_restore)", 1, 1)
        elif entry.role in sqlite_targets:
            _replace_sqlite(staged, sqlite_targets[entry.role])
        elif entry.role == "config":
            if layout.config.exists():
                kept = layout.config.with_name("roost.toml.restored")
                shutil.move(staged, kept)
                notes.append(f"kept the existing {layout.config}; the archived one is {kept}")
            else:
                shutil.move(staged, layout.config)
        elif entry.role == "secret":
            shutil.move(staged, layout.webhook_key)
            layout.webhook_key.chmod(0o600)
    for role, root in (("kv", layout.kv), ("workspace", layout.workspaces)):
        if role in by_role:
            _replace_tree(staging / role, root)
            report(f"{role} files", len(by_role[role]), len(by_role[role]))
    return notes


def _replace_sqlite(staged: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in (target, target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):  # fmt: skip
        stale.unlink(missing_ok=True)
    shutil.move(staged, target)


def _replace_tree(staged: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staged, target)


def _pg_restore(url: str, dump: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed program, URL passed as one argument
        [postgres_tool("pg_restore"), "--no-owner", "--clean", "--if-exists",
         "--single-transaction", f"--dbname={url}", str(dump)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BackupRefused(f"pg_restore failed: {result.stderr.strip()[:500]}")


async def _migrate_forward(settings: Settings) -> None:
    from roost.platform.schema import migrate_all
    from roost.storage import Database

    database = await Database.connect(settings.database_url, settings.storage)
    try:
        await migrate_all(database)
    finally:
        await database.close()
