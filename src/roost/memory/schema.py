"""Tables of the memory layer in Roost's relational store (component ``memory``).

Short-term windows, the consolidation journal and the knowledge-base catalogue live here on
both backends. Vector items live in the vector store: on PostgreSQL that is this database
too (``memory_items`` below, vectors in per-embedder tables made by the store); on SQLite
it is a separate file opened through apsw, because extensions cannot load through the
driver the rest of Roost uses.
"""

from __future__ import annotations

from roost.storage import Migration

COMPONENT = "memory"

MEMORY_MIGRATIONS = [
    Migration(
        COMPONENT,
        1,
        "short-term windows, consolidation journal, knowledge catalogue",
        common=[
            "CREATE TABLE memory_threads ("
            " tenant_id TEXT NOT NULL, thread_id TEXT NOT NULL, next_seq BIGINT NOT NULL,"
            " expires_at BIGINT, updated_at BIGINT NOT NULL,"
            " PRIMARY KEY (tenant_id, thread_id))",
            "CREATE TABLE memory_turns ("
            " tenant_id TEXT NOT NULL, thread_id TEXT NOT NULL, seq BIGINT NOT NULL,"
            " id TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,"
            " tokens INTEGER NOT NULL, pinned INTEGER NOT NULL, metadata TEXT NOT NULL,"
            " created_at BIGINT NOT NULL,"
            " PRIMARY KEY (tenant_id, thread_id, seq), UNIQUE (tenant_id, id))",
            "CREATE TABLE memory_consolidations ("
            " tenant_id TEXT NOT NULL, batch_id TEXT NOT NULL, thread_id TEXT NOT NULL,"
            " agent_id TEXT NOT NULL, turn_ids TEXT NOT NULL, state TEXT NOT NULL, result TEXT,"
            " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
            " PRIMARY KEY (tenant_id, batch_id))",
            "CREATE TABLE kb_collections ("
            " tenant_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL,"
            " description TEXT NOT NULL, created_at BIGINT NOT NULL,"
            " PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, name))",
            "CREATE TABLE kb_sources ("
            " tenant_id TEXT NOT NULL, id TEXT NOT NULL, collection_id TEXT NOT NULL,"
            " uri TEXT NOT NULL, kind TEXT NOT NULL, content_hash TEXT NOT NULL,"
            " num_chunks INTEGER NOT NULL, num_bytes BIGINT NOT NULL, metadata TEXT NOT NULL,"
            " updated_at BIGINT NOT NULL,"
            " PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, collection_id, uri))",
        ],
        postgresql=[
            "CREATE TABLE memory_items ("
            " tenant_id TEXT NOT NULL, id TEXT NOT NULL, namespace TEXT NOT NULL,"
            " text TEXT NOT NULL, metadata JSONB NOT NULL DEFAULT '{}'::jsonb,"
            " embedder TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
            " tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,"
            " PRIMARY KEY (tenant_id, id))",
            "CREATE INDEX memory_items_ns ON memory_items (tenant_id, namespace, embedder)",
            "CREATE INDEX memory_items_tsv ON memory_items USING gin (tsv)",
        ],
    ),
    Migration(
        COMPONENT,
        2,
        "embedding cache: vectors of texts already embedded",
        sqlite=[
            "CREATE TABLE embedding_cache ("
            " embedder TEXT NOT NULL, digest TEXT NOT NULL, vector BLOB NOT NULL,"
            " used_at BIGINT NOT NULL, PRIMARY KEY (embedder, digest))",
            "CREATE INDEX embedding_cache_lru ON embedding_cache (used_at)",
        ],
        postgresql=[
            "CREATE TABLE embedding_cache ("
            " embedder TEXT NOT NULL, digest TEXT NOT NULL, vector BYTEA NOT NULL,"
            " used_at BIGINT NOT NULL, PRIMARY KEY (embedder, digest))",
            "CREATE INDEX embedding_cache_lru ON embedding_cache (used_at)",
        ],
    ),
    Migration(
        COMPONENT,
        3,
        "knowledge folders: each synced root with its last sync and status",
        common=[
            "CREATE TABLE kb_folders ("
            " tenant_id TEXT NOT NULL, collection_id TEXT NOT NULL, root TEXT NOT NULL,"
            " added_at BIGINT NOT NULL, last_sync_at BIGINT, status TEXT NOT NULL,"
            " message TEXT NOT NULL, num_files INTEGER NOT NULL,"
            " PRIMARY KEY (tenant_id, collection_id, root))",
        ],
    ),
    Migration(
        COMPONENT,
        4,
        "knowledge URLs: each fetched page with its validators, last sync and status",
        common=[
            "CREATE TABLE kb_urls ("
            " tenant_id TEXT NOT NULL, collection_id TEXT NOT NULL, url TEXT NOT NULL,"
            " added_at BIGINT NOT NULL, last_sync_at BIGINT, status TEXT NOT NULL,"
            " message TEXT NOT NULL, etag TEXT, last_modified TEXT,"
            " PRIMARY KEY (tenant_id, collection_id, url))",
        ],
    ),
]
