"""Copy a home into a staging directory, consistently, while Roost may be running.

- SQLite databases go through SQLite's online backup API in one step: a single read
  transaction, so the copy is one committed state, and (in WAL mode) writers are never
  blocked while it is taken.
- PostgreSQL is dumped with ``pg_dump`` (one snapshot of the whole database).
- KV cold files are hard-linked: the cold tier replaces files atomically and never
  rewrites them in place, so a link is a snapshot that costs no copy (a copy when the
  staging directory is on another file system).
- Workspace files are copied; roost.toml is copied without its secrets unless asked.

Each staged file is hashed once here; the manifest carries the hashes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from roost.backup.archive import sha256_file
from roost.backup.config_redact import redact_config
from roost.backup.errors import BackupRefused
from roost.backup.manifest import FileEntry, Role
from roost.platform.layout import HomeLayout, postgres_tool
from roost.storage.migrations import VERSION_TABLE

Step = Callable[[str, int, int], None]  # step name, done, total
_KV_TEMP_PREFIX = ".tmp-"  # half-written cold files (roost.kvcache.cold_store)


@dataclass(slots=True)
class Staged:
    files: list[FileEntry] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)  # member name -> staged file
    schema: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # why something was left out

    def add(self, staged: Path, member: str, role: Role, target: str = "") -> None:
        self.files.append(
            FileEntry(member, role, sha256_file(staged), staged.stat().st_size, target)
        )
        self.sources[member] = staged


def stage_home(
    layout: HomeLayout,
    staging: Path,
    *,
    with_kv: bool,
    with_secrets: bool,
    step: Step,
) -> Staged:
    staged = Staged()
    if layout.dialect == "postgresql":
        assert layout.postgres_url is not None
        dump = staging / "postgres.dump"
        step("database (pg_dump)", 0, 1)
        _pg_dump(layout.postgres_url, dump)
        staged.add(dump, "data/postgres.dump", "database")
        staged.schema = _postgres_schema(layout.postgres_url)
        step("database (pg_dump)", 1, 1)
    for role, path in layout.sqlite_files().items():
        if not path.exists():
            continue
        target = staging / f"{role}.db"
        step(f"{role} ({path.name})", 0, 1)
        sqlite_backup(path, target)
        if role == "database":
            staged.schema = _sqlite_schema(target)
        staged.add(target, f"data/{role}.db", role)  # type: ignore[arg-type]
        step(f"{role} ({path.name})", 1, 1)
    if with_kv:
        _stage_tree(layout.kv, staging / "kv", "kv", staged, step, link=True)
    _stage_tree(layout.workspaces, staging / "workspaces", "workspace", staged, step, link=False)
    _stage_config(layout, staging, staged, with_secrets=with_secrets)
    return staged


def sqlite_backup(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API, one step)."""
    # Read-only URI: a backup must never create or alter the database it copies.
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: one read transaction, so one committed state
    finally:
        dst.close()
        src.close()


def _sqlite_schema(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        known = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
        ).fetchone()
        if known is None:
            return {}
        rows = conn.execute(
            f"SELECT component, MAX(version) FROM {VERSION_TABLE} GROUP BY component"
        ).fetchall()
    return {str(component): int(version) for component, version in rows}


def _pg_dump(url: str, target: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed program, URL passed as one argument
        [postgres_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupRefused(f"pg_dump failed: {result.stderr.strip()[:500]}")


def _postgres_schema(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        present = conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone()
        if present is None or present[0] is None:
            return {}
        rows = conn.execute(
            f"SELECT component, MAX(version) FROM {VERSION_TABLE} GROUP BY component"
        ).fetchall()
    return {str(component): int(version) for component, version in rows}


def _stage_tree(
    root: Path, into: Path, role: Role, staged: Staged, step: Step, *, link: bool
) -> None:
    files = sorted(_files_under(root))
    name = f"{role} files"
    for done, file in enumerate(files, start=1):
        relative = file.relative_to(root).as_posix()
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            _link_or_copy(file, target) if link else shutil.copy2(file, target)
        except FileNotFoundError:
            continue  # evicted or deleted between the listing and now: not part of the state
        staged.add(target, f"{role}/{relative}", role, relative)
        step(name, done, len(files))


def _files_under(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for directory, _subdirs, names in os.walk(root):
        for name in names:
            if not name.startswith(_KV_TEMP_PREFIX):
                yield Path(directory) / name


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _stage_config(layout: HomeLayout, staging: Path, staged: Staged, *, with_secrets: bool) -> None:
    if layout.config.is_file():
        target = staging / "roost.toml"
        text = layout.config.read_text()
        kept = text if with_secrets else redact_config(text)
        if kept is None:
            staged.skipped.append("roost.toml: secrets could not be removed safely")
        else:
            target.write_text(kept)
            staged.add(target, "config/roost.toml", "config")
    if with_secrets and layout.webhook_key.is_file():
        target = staging / "agent-webhook.key"
        shutil.copy2(layout.webhook_key, target)
        staged.add(target, "secret/agent-webhook.key", "secret")
