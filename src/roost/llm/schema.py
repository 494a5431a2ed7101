"""Tables of the LLM layer (component ``llm``): usage records, budget ledger and
reservations, and the database tier of the response cache."""

from __future__ import annotations

from roost.storage import Migration

LLM_MIGRATIONS = [
    Migration(
        "llm",
        1,
        "usage, budgets, response cache",
        common=[
            "CREATE TABLE llm_usage ("
            " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, key_id TEXT, agent_id TEXT,"
            " run_id TEXT, model_group TEXT, provider TEXT NOT NULL, model TEXT NOT NULL,"
            " input_tokens BIGINT NOT NULL, cached_input_tokens BIGINT NOT NULL,"
            " output_tokens BIGINT NOT NULL, cost_nano BIGINT NOT NULL,"
            " latency_ms BIGINT NOT NULL, status TEXT NOT NULL, cache TEXT NOT NULL,"
            " price_version TEXT, created_at BIGINT NOT NULL)",
            "CREATE INDEX llm_usage_tenant_time ON llm_usage (tenant_id, created_at)",
            "CREATE TABLE llm_budget_ledger ("
            " scope TEXT NOT NULL, period TEXT NOT NULL, spent_nano BIGINT NOT NULL,"
            " reserved_nano BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
            " PRIMARY KEY (scope, period))",
            "CREATE TABLE llm_budget_reservations ("
            " id TEXT NOT NULL, scope TEXT NOT NULL, period TEXT NOT NULL,"
            " amount_nano BIGINT NOT NULL, created_at BIGINT NOT NULL,"
            " PRIMARY KEY (id, scope))",
            "CREATE INDEX llm_budget_reservations_age ON llm_budget_reservations (created_at)",
            "CREATE TABLE llm_cache ("
            " key TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, partition TEXT NOT NULL,"
            " vector TEXT, value TEXT NOT NULL, expires_at BIGINT NOT NULL)",
            "CREATE INDEX llm_cache_partition ON llm_cache (partition, expires_at)",
        ],
    )
]
