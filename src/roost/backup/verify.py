"""``backup verify``: read a whole archive and check every member against its manifest."""

from __future__ import annotations

from pathlib import Path

from roost.backup.archive import read_archive
from roost.backup.manifest import Manifest
from roost.backup.snapshot import Step
from roost.platform.schema import known_schema_versions

_READ_BYTES = 1 << 20


def verify_archive(path: Path, passphrase: str | None, step: Step | None = None) -> Manifest:
    """The manifest of a sound archive; raises :class:`ArchiveCorrupt` naming the first
    member that is altered, truncated, missing or unexpected."""
    with read_archive(path, passphrase) as (manifest, members):
        total, done = manifest.total_bytes, 0
        for member in members:
            while chunk := member.stream.read(_READ_BYTES):
                done += len(chunk)
                if step is not None:
                    step("verify", done, total)
    return manifest


def newer_schema(manifest: Manifest) -> list[str]:
    """Why this Roost cannot restore the archive's schema (empty when it can)."""
    return manifest.newer_components(known_schema_versions())
