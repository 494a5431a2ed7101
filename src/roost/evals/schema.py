"""Tables of datasets, evaluations, experiments and feedback (component "evals").

A dataset version is immutable: a change (create, add) writes a new version with all its
items, so an evaluation names exactly what it ran over.
"""

from __future__ import annotations

from roost.storage import Migration

EVAL_MIGRATIONS = [
    Migration(
        component="evals",
        version=1,
        name="datasets, evaluations, experiments, feedback",
        common=[
            """CREATE TABLE dataset_versions (
                tenant_id TEXT NOT NULL,
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                description TEXT NOT NULL,
                item_count INTEGER NOT NULL,
                digest TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name, version)
            )""",
            """CREATE TABLE dataset_items (
                tenant_id TEXT NOT NULL,
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                position INTEGER NOT NULL,
                item TEXT NOT NULL,
                PRIMARY KEY (tenant_id, name, version, position)
            )""",
            """CREATE TABLE eval_runs (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                dataset TEXT NOT NULL,
                dataset_version INTEGER NOT NULL,
                target TEXT NOT NULL,
                scorer TEXT NOT NULL,
                status TEXT NOT NULL,
                item_count INTEGER NOT NULL,
                summary TEXT,
                error TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            "CREATE INDEX eval_runs_by_tenant ON eval_runs (tenant_id, created_at)",
            """CREATE TABLE eval_results (
                eval_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                tenant_id TEXT NOT NULL,
                thread_id TEXT,
                run_id TEXT,
                status TEXT NOT NULL,
                output TEXT,
                score DOUBLE PRECISION,
                passed INTEGER,
                reason TEXT,
                latency_ms BIGINT,
                PRIMARY KEY (eval_id, position)
            )""",
            """CREATE TABLE experiments (
                tenant_id TEXT NOT NULL,
                name TEXT NOT NULL,
                agent TEXT NOT NULL,
                variants TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name)
            )""",
            """CREATE TABLE experiment_runs (
                run_id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                experiment TEXT NOT NULL,
                variant TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                model TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX experiment_runs_by_experiment ON experiment_runs (tenant_id, experiment)",
            """CREATE TABLE run_feedback (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                score DOUBLE PRECISION NOT NULL,
                comment TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX run_feedback_by_run ON run_feedback (tenant_id, run_id)",
        ],
    ),
]
