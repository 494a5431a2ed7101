"""The manifest: what an archive holds, from which Roost and schema, and every file's hash.

It is the first member of the archive, so ``list`` and ``verify`` learn what to expect
before reading anything else. Each file has a ``role`` that says where it goes back on
restore (the main database, the KV tier, ...), resolved against the *target* settings,
so an archive restores into a home whose paths differ from the one it came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from roost.backup.errors import ArchiveCorrupt, BackupRefused

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
Role = Literal[
    "database",  # the relational store: a SQLite file, or a pg_dump of PostgreSQL
    "runs",  # DBOS's system database when it is a SQLite file
    "checkpoints",  # thread checkpoints when they are a SQLite file
    "vectors",  # the embedded vector store (memory.db)
    "kv",  # a file of the KV cold tier (relative to the KV directory)
    "workspace",  # a file of an agent workspace (relative to the workspaces directory)
    "config",  # roost.toml, secrets removed unless the archive is encrypted
    "secret",  # the webhook signing key (only with --with-secrets)
    "tenant-rows",  # one tenant's rows of every table, as JSON lines (--tenant)
    "tenant-vectors",  # one tenant's vector items with their vectors (--tenant)
    "tenant-checkpoints",  # one tenant's thread checkpoints (--tenant)
    "agent-rows",  # one agent's versions, runs, threads and windows (backup export --agent)
    "agent-vectors",  # one agent's memories with their vectors
    "agent-checkpoints",  # the checkpoints of one agent's threads
]


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # member name in the archive
    role: Role
    sha256: str
    size: int
    target: str = ""  # kv/workspace: path under that directory


@dataclass(slots=True)
class Manifest:
    roost_version: str
    created_at_ms: int
    dialect: str  # "sqlite" or "postgresql"
    schema: dict[str, int]  # component -> newest applied migration
    with_kv: bool = False
    with_secrets: bool = False
    encrypted: bool = False
    label: str = ""
    files: list[FileEntry] = field(default_factory=list)
    tenant: dict[str, str] | None = None  # {"id", "name"}: an export of one tenant
    agent: dict[str, str] | None = None  # {"name", "tenant_id", "tenant_name"}: one agent
    format: int = FORMAT_VERSION

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            if int(raw.get("format", 0)) > FORMAT_VERSION:
                raise BackupRefused(
                    f"archive format {raw['format']} is newer than this Roost reads"
                    f" ({FORMAT_VERSION}): upgrade Roost to restore it"
                )
            files = [FileEntry(**entry) for entry in raw.pop("files")]
            return cls(files=files, **raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise ArchiveCorrupt(f"unreadable manifest: {exc}", MANIFEST_NAME) from exc

    def newer_components(self, known: dict[str, int]) -> list[str]:
        """Components whose schema in the archive is newer than ``known`` (this code's)."""
        return sorted(
            f"{name} v{version} (this Roost knows v{known.get(name, 0)})"
            for name, version in self.schema.items()
            if version > known.get(name, 0)
        )
