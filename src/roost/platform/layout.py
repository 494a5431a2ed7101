"""Where each part of a home lives, resolved from settings (backups, migrate-store).

Backups read these paths and restores write them, each from its own settings, so a home
moved or configured differently (another KV directory, an external database) still
round-trips. Only files Roost cannot rebuild are listed: converted models under
``models/`` are re-made from their source on first use and are left out.
"""

from __future__ import annotations

import glob
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from roost.config import Settings
from roost.errors import StorageUnavailable
from roost.platform import wiring


@dataclass(frozen=True, slots=True)
class HomeLayout:
    home: Path
    dialect: str  # of the relational store: "sqlite" or "postgresql"
    database: Path | None  # the SQLite file, None on PostgreSQL
    postgres_url: str | None  # libpq form (no driver suffix), None on SQLite
    runs: Path | None  # DBOS's SQLite file, None when it lives in PostgreSQL
    checkpoints: Path | None  # thread checkpoints' SQLite file, None in PostgreSQL
    vectors: Path  # the embedded vector store (absent on disk when pgvector holds them)
    kv: Path
    workspaces: Path
    config: Path
    webhook_key: Path
    backups: Path

    @classmethod
    def of(cls, settings: Settings) -> HomeLayout:
        home = settings.home
        url = make_url(settings.database_url)
        is_sqlite = url.get_backend_name() == "sqlite"
        runs = make_url(wiring.runs_url(settings))
        checkpoints_path, checkpoints_url = wiring.checkpoints(settings)
        return cls(
            home=home,
            dialect="sqlite" if is_sqlite else "postgresql",
            database=Path(url.database or "").expanduser() if is_sqlite else None,
            postgres_url=None if is_sqlite else libpq_url(settings.database_url),
            runs=Path(runs.database or "")
            if runs.get_backend_name() == "sqlite" and runs.database
            else None,
            checkpoints=checkpoints_path if checkpoints_url is None else None,
            vectors=settings.memory.vector_path or home / "memory.db",
            kv=settings.engine.session_cache.directory or home / "kv",
            # As roost.tools.service.workspace_root, without importing the tool layer.
            workspaces=settings.tools.workspaces_dir or home / "workspaces",
            config=home / "roost.toml",
            webhook_key=home / "agent-webhook.key",
            backups=settings.backup.directory or home / "backups",
        )

    def sqlite_files(self) -> dict[str, Path]:
        """role -> SQLite file, for the databases that are files here."""
        files = {"database": self.database, "runs": self.runs, "checkpoints": self.checkpoints}
        files["vectors"] = self.vectors
        return {role: path for role, path in files.items() if path is not None}


def libpq_url(url: str) -> str:
    """``postgresql://…`` as libpq tools (pg_dump, psql, psycopg) take it."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: the newest installed server's binaries first, since a
    client older than the server refuses to dump it."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4])
    )
    found = candidates[-1] if candidates else shutil.which(name)
    if found is None:
        raise StorageUnavailable(f"{name} is not installed: PostgreSQL backups need it")
    return found
