"""Tables of the agents runtime: agent versions and tags, threads, runs (component "agents")."""

from __future__ import annotations

from roost.storage import Migration

AGENT_MIGRATIONS = [
    Migration(
        component="agents",
        version=1,
        name="agent registry, threads and runs",
        common=[
            """CREATE TABLE agent_versions (
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                spec TEXT NOT NULL,
                digest TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name, version)
            )""",
            """CREATE TABLE agent_tags (
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                name TEXT NOT NULL,
                tag TEXT NOT NULL,
                version INTEGER NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name, tag)
            )""",
            """CREATE TABLE agent_threads (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                metadata TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            "CREATE INDEX agent_threads_by_tenant ON agent_threads (tenant_id, created_at)",
            """CREATE TABLE agent_runs (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                thread_id TEXT NOT NULL,
                agent TEXT NOT NULL,
                agent_version INTEGER NOT NULL,
                status TEXT NOT NULL,
                input TEXT NOT NULL,
                output TEXT,
                usage TEXT NOT NULL,
                error TEXT,
                interrupts TEXT,
                webhook TEXT,
                workflow_id TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            "CREATE INDEX agent_runs_by_thread ON agent_runs (tenant_id, thread_id, created_at)",
            "CREATE INDEX agent_runs_by_status ON agent_runs (status)",
        ],
    ),
    Migration(
        component="agents",
        version=2,
        name="coordination sessions",
        common=[
            """CREATE TABLE coordination_sessions (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                topic TEXT NOT NULL,
                agents TEXT NOT NULL,
                transcript TEXT NOT NULL,
                whispers TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            "CREATE INDEX coordination_sessions_by_tenant ON coordination_sessions (tenant_id)",
        ],
    ),
    Migration(
        component="agents",
        version=3,
        name="thread ids live in their tenant's namespace",
        # Client-chosen ids (seed 004's /execute session ids): two tenants may use the same one.
        sqlite=[
            """CREATE TABLE agent_threads_v3 (
                id TEXT NOT NULL,
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                metadata TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, id)
            )""",
            "INSERT INTO agent_threads_v3 SELECT id, tenant_id, metadata, created_at, updated_at"
            " FROM agent_threads",
            "DROP TABLE agent_threads",
            "ALTER TABLE agent_threads_v3 RENAME TO agent_threads",
            "CREATE INDEX agent_threads_by_tenant ON agent_threads (tenant_id, created_at)",
        ],
        postgresql=[
            "ALTER TABLE agent_threads DROP CONSTRAINT agent_threads_pkey",
            "ALTER TABLE agent_threads ADD PRIMARY KEY (tenant_id, id)",
        ],
    ),
    Migration(
        component="agents",
        version=4,
        name="a tenant's runs newest first",
        # The web UI lists a tenant's runs across its threads; without this index that is a
        # scan of every tenant's runs.
        common=["CREATE INDEX agent_runs_by_tenant ON agent_runs (tenant_id, created_at)"],
    ),
]
