"""The archives in a backup directory: listing, finding one by id, pruning old ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roost.backup.archive import ENCRYPTED_SUFFIX, PLAIN_SUFFIX, archive_id, read_archive
from roost.backup.errors import ArchiveCorrupt, BackupRefused
from roost.backup.manifest import Manifest
from roost.errors import NotFound


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    id: str
    path: Path
    size: int
    modified_ms: int
    encrypted: bool
    manifest: Manifest | None  # None when encrypted or unreadable
    problem: str | None = None


def list_archives(directory: Path) -> list[ArchiveInfo]:
    """Every archive in ``directory``, newest first (by the time in its name)."""
    if not directory.is_dir():
        return []
    found = [
        path
        for path in directory.iterdir()
        if path.is_file() and path.name.endswith((PLAIN_SUFFIX, ENCRYPTED_SUFFIX))
    ]
    return [_describe(path) for path in sorted(found, key=lambda p: p.name, reverse=True)]


def find_archive(directory: Path, name: str) -> Path:
    """An archive by path, by id, or by a unique prefix of an id."""
    as_path = Path(name).expanduser()
    if as_path.is_file():
        return as_path
    matches = [a.path for a in list_archives(directory) if a.id.startswith(name)]
    exact = [p for p in matches if archive_id(p) == name]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise NotFound(f"no backup {name!r} in {directory}")
    raise NotFound(f"{name!r} matches {len(matches)} backups in {directory}: give more of it")


def prune(directory: Path, label: str, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest archives labelled ``label``; return those deleted."""
    labelled = [a.path for a in list_archives(directory) if a.id.endswith(f"-{label}")]
    doomed = labelled[keep:]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def _describe(path: Path) -> ArchiveInfo:
    stat = path.stat()
    encrypted = path.name.endswith(ENCRYPTED_SUFFIX)
    manifest: Manifest | None = None
    problem: str | None = None
    if not encrypted:
        try:
            # Only the manifest is read: it is the archive's first member.
            with read_archive(path, None) as (found, _members):
                manifest = found
        except (ArchiveCorrupt, BackupRefused) as exc:
            problem = exc.message
    return ArchiveInfo(
        archive_id(path),
        path,
        stat.st_size,
        int(stat.st_mtime * 1000),
        encrypted,
        manifest,
        problem,
    )
