"""Every schema migration of Roost's relational store, in one list, and what a database holds.

Each layer still migrates its own tables when it opens; this list exists for the
operations that touch a whole store at once (backup manifests, restore, migrate-store),
which must know every component and the newest version this code understands.
"""

from __future__ import annotations

from collections.abc import Sequence

from roost.agents.routing import ROUTER_MIGRATIONS
from roost.agents.schema import AGENT_MIGRATIONS
from roost.evals.schema import EVAL_MIGRATIONS
from roost.limits.schema import LIMIT_MIGRATIONS
from roost.llm.schema import LLM_MIGRATIONS
from roost.memory.schema import MEMORY_MIGRATIONS
from roost.observe.trace_schema import TRACE_MIGRATIONS
from roost.prompts.schema import PROMPT_MIGRATIONS
from roost.runs.schema import RUN_MIGRATIONS
from roost.security.schema import CORE_MIGRATIONS
from roost.security.web_sessions import WEB_SESSION_MIGRATIONS
from roost.storage import Database, Migration, migrate
from roost.storage.migrations import VERSION_TABLE
from roost.tools.approvals import APPROVAL_MIGRATIONS

# Core first: other components' tables reference tenants.
ALL_MIGRATIONS: tuple[Sequence[Migration], ...] = (
    CORE_MIGRATIONS,
    LLM_MIGRATIONS,
    MEMORY_MIGRATIONS,
    APPROVAL_MIGRATIONS,
    AGENT_MIGRATIONS,
    RUN_MIGRATIONS,
    ROUTER_MIGRATIONS,
    LIMIT_MIGRATIONS,
    TRACE_MIGRATIONS,
    WEB_SESSION_MIGRATIONS,
    PROMPT_MIGRATIONS,
    EVAL_MIGRATIONS,
)


def known_schema_versions() -> dict[str, int]:
    """The newest version of each component this code can migrate to."""
    versions: dict[str, int] = {}
    for migrations in ALL_MIGRATIONS:
        for migration in migrations:
            versions[migration.component] = max(
                versions.get(migration.component, 0), migration.version
            )
    return versions


async def migrate_all(database: Database) -> None:
    """Bring every component's tables to the newest version."""
    for migrations in ALL_MIGRATIONS:
        await migrate(database, migrations)


async def stored_schema_versions(database: Database) -> dict[str, int]:
    """The newest applied version of each component in ``database`` (empty when none)."""
    if VERSION_TABLE not in await table_names(database):
        return {}
    rows = await database.fetch_all(
        f"SELECT component, MAX(version) AS version FROM {VERSION_TABLE} GROUP BY component"
    )
    return {str(row["component"]): int(row["version"]) for row in rows}


async def table_names(database: Database) -> list[str]:
    """Ordinary tables of the database (SQLite's internal and FTS shadow tables excluded)."""
    if database.dialect == "sqlite":
        sql = (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    else:
        sql = (
            "SELECT table_name AS name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        )
    return [str(row["name"]) for row in await database.fetch_all(sql)]
