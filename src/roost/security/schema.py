"""Tables of the platform core: tenants, API keys, the append-only audit log, secrets."""

from roost.storage import Migration

_APPEND_ONLY_MESSAGE = "audit_events is append-only"
# What a verified key means: its secret, tenant, role, operator flag, expiry, revocation,
# and whether its tenant is disabled. last_used_at is left out on purpose: it changes
# once a minute per busy key and says nothing about what the key may do.
_KEY_COLUMNS = "tenant_id, salt, secret_hash, expires_at, revoked_at, role, operator"
AUTH_CHANGES_CHANNEL = "roost_auth_changes"
_BUMP = "UPDATE auth_epoch SET version = version + 1 WHERE id = 1"

CORE_MIGRATIONS = [
    Migration(
        component="core",
        version=1,
        name="tenants, api keys, audit events",
        common=[
            """CREATE TABLE tenants (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                created_at BIGINT NOT NULL,
                disabled_at BIGINT
            )""",
            """CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                name TEXT NOT NULL,
                salt TEXT NOT NULL,
                secret_hash TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                revoked_at BIGINT,
                last_used_at BIGINT
            )""",
            "CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id)",
            """CREATE TABLE audit_events (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                at BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT,
                outcome TEXT NOT NULL,
                details TEXT NOT NULL
            )""",
            "CREATE INDEX audit_events_by_tenant_time ON audit_events (tenant_id, at)",
        ],
        sqlite=[
            f"""CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
                BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END""",
            f"""CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
                BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END""",
        ],
        postgresql=[
            f"""CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION '{_APPEND_ONLY_MESSAGE}'; END $$ LANGUAGE plpgsql""",
            """CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
                FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
            # TRUNCATE skips row triggers; refuse it too.
            """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
                FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
        ],
    ),
    Migration(
        component="core",
        version=2,
        name="audit hash chain",
        # Records written before this version keep seq/hash NULL: they predate the chain
        # and `roost audit verify` counts them as unchained rather than broken.
        common=[
            "ALTER TABLE audit_events ADD COLUMN seq BIGINT",
            "ALTER TABLE audit_events ADD COLUMN request_id TEXT",
            "ALTER TABLE audit_events ADD COLUMN principal_role TEXT",
            "ALTER TABLE audit_events ADD COLUMN prev_hash TEXT",
            "ALTER TABLE audit_events ADD COLUMN hash TEXT",
            # A second writer that somehow skipped the head lock still cannot fork the chain.
            "CREATE UNIQUE INDEX audit_events_chain ON audit_events (tenant_id, seq)",
            "CREATE INDEX audit_events_by_time ON audit_events (at, id)",
            # One row per tenant: the newest link. Appends lock it, so they queue per tenant.
            """CREATE TABLE audit_heads (
                tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
                seq BIGINT NOT NULL,
                hash TEXT NOT NULL
            )""",
        ],
    ),
    Migration(
        component="core",
        version=3,
        name="encrypted secrets",
        common=[
            """CREATE TABLE secrets (
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                name TEXT NOT NULL,
                ciphertext TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name)
            )""",
        ],
    ),
    # Its own component, so that other changes to the core tables number independently.
    # Keys made before roles existed: those of the default tenant keep the operator power
    # they had ("any key of the default tenant is admin"); every key starts as an owner.
    Migration(
        component="key_roles",
        version=1,
        name="api key role and operator flag",
        common=[
            "ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'owner'",
            "ALTER TABLE api_keys ADD COLUMN operator INTEGER NOT NULL DEFAULT 0",
            """UPDATE api_keys SET operator = 1
                WHERE tenant_id IN (SELECT id FROM tenants WHERE name = 'default')""",
        ],
    ),
    # Every change to what a key means bumps one counter in the changing transaction, and on
    # PostgreSQL also notifies: processes that keep verified keys in memory (key_cache.py)
    # drop them at once, whoever made the change (admin API, CLI, or a hand-written UPDATE).
    Migration(
        component="auth_changes",
        version=1,
        name="auth change counter and triggers",
        common=[
            "CREATE TABLE auth_epoch (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
            "INSERT INTO auth_epoch (id, version) VALUES (1, 0)",
        ],
        sqlite=[
            f"""CREATE TRIGGER api_keys_auth_update AFTER UPDATE OF {_KEY_COLUMNS} ON api_keys
                BEGIN {_BUMP}; END""",
            f"CREATE TRIGGER api_keys_auth_delete AFTER DELETE ON api_keys BEGIN {_BUMP}; END",
            f"""CREATE TRIGGER tenants_auth_update AFTER UPDATE OF disabled_at ON tenants
                BEGIN {_BUMP}; END""",
            f"CREATE TRIGGER tenants_auth_delete AFTER DELETE ON tenants BEGIN {_BUMP}; END",
        ],
        postgresql=[
            # NOTIFY inside the transaction is delivered on commit, never for a rollback.
            f"""CREATE FUNCTION roost_auth_changed() RETURNS trigger AS $$
                BEGIN {_BUMP}; PERFORM pg_notify('{AUTH_CHANGES_CHANNEL}', '');
                RETURN NULL; END $$ LANGUAGE plpgsql""",
            f"""CREATE TRIGGER api_keys_auth_changed
                AFTER UPDATE OF {_KEY_COLUMNS} OR DELETE OR TRUNCATE ON api_keys
                FOR EACH STATEMENT EXECUTE FUNCTION roost_auth_changed()""",
            """CREATE TRIGGER tenants_auth_changed AFTER UPDATE OF disabled_at OR DELETE ON tenants
                FOR EACH STATEMENT EXECUTE FUNCTION roost_auth_changed()""",
        ],
    ),
]
