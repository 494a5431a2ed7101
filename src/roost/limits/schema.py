"""Tables of the limits layer (component ``limits``): bucket levels, concurrency leases
and per-tenant overrides. Redis deployments keep levels and leases in Redis instead."""

from __future__ import annotations

from roost.storage import Migration

LIMIT_MIGRATIONS = [
    Migration(
        "limits",
        1,
        "token buckets, leases, per-tenant overrides",
        common=[
            "CREATE TABLE limit_buckets ("
            " key TEXT PRIMARY KEY, level DOUBLE PRECISION NOT NULL, updated_ms BIGINT NOT NULL)",
            "CREATE TABLE limit_leases ("
            " key TEXT NOT NULL, id TEXT NOT NULL, expires_ms BIGINT NOT NULL,"
            " PRIMARY KEY (key, id))",
            "CREATE TABLE limit_overrides ("
            " tenant_id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at BIGINT NOT NULL)",
        ],
    )
]
