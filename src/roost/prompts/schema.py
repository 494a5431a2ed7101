"""Tables of prompt management (component "prompts"): versions and the labels on them."""

from __future__ import annotations

from roost.storage import Migration

PROMPT_MIGRATIONS = [
    Migration(
        component="prompts",
        version=1,
        name="prompt versions and labels",
        common=[
            """CREATE TABLE prompt_versions (
                tenant_id TEXT NOT NULL,
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                template TEXT NOT NULL,
                config TEXT NOT NULL,
                description TEXT NOT NULL,
                digest TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name, version)
            )""",
            """CREATE TABLE prompt_labels (
                tenant_id TEXT NOT NULL,
                name TEXT NOT NULL,
                label TEXT NOT NULL,
                version INTEGER NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name, label)
            )""",
        ],
    ),
]
