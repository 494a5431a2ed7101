"""Tables of the run layer (component "runs"): run events and the workers' heart-beats.

Run records themselves (status, output, usage) are ``agent_runs`` of the agents layer;
these tables make a run observable and recoverable from any process.
"""

from __future__ import annotations

from roost.storage import Migration

RUN_MIGRATIONS = [
    Migration(
        component="runs",
        version=1,
        name="run events and worker heart-beats",
        sqlite=[
            """CREATE TABLE run_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                tenant_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                event TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX run_events_by_run ON run_events (run_id, id)",
        ],
        postgresql=[
            """CREATE TABLE run_events (
                id BIGSERIAL PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                event TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX run_events_by_run ON run_events (run_id, id)",
        ],
        common=[
            """CREATE TABLE run_workers (
                executor_id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                started_at BIGINT NOT NULL,
                heartbeat_at BIGINT NOT NULL,
                stopped_at BIGINT,
                taken_over_by TEXT,
                taken_over_at BIGINT
            )""",
        ],
    ),
]
