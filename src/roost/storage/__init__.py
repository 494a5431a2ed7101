"""Storage backends: embedded SQLite (default), PostgreSQL, Redis; versioned migrations."""

from roost.storage.database import Database, Row, now_ms
from roost.storage.ids import new_id
from roost.storage.migrations import Migration, migrate

__all__ = ["Database", "Migration", "Row", "migrate", "new_id", "now_ms"]
