"""The services of one Roost deployment, opened from settings.

The server, the CLI and tests all start here, so that each sees the same stores,
migrated to the same schema version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.config import Settings
from roost.platform.private_home import make_home_private
from roost.security.api_keys import ApiKey, ApiKeyStore
from roost.security.audit import AuditLog
from roost.security.auth_changes import AuthChangeFeed, open_auth_changes
from roost.security.key_cache import VerifiedCache
from roost.security.schema import CORE_MIGRATIONS
from roost.security.secrets import SecretStore
from roost.security.tenants import DEFAULT_TENANT, Tenant, TenantStore
from roost.storage import Database, migrate
from roost.storage.redis import RedisClient, connect_redis


@dataclass(slots=True)
class Platform:
    settings: Settings
    database: Database
    tenants: TenantStore
    api_keys: ApiKeyStore
    audit: AuditLog
    redis: RedisClient | None = None
    # Tells this process when keys or tenants changed anywhere (verified-key caches).
    auth_changes: AuthChangeFeed = field(default_factory=AuthChangeFeed)

    @classmethod
    async def open(cls, settings: Settings) -> Platform:
        """Connect to storage and bring its schema up to date.

        Raises :class:`roost.errors.StorageUnavailable` naming the URL when it is unreachable.
        """
        workspaces = settings.tools.workspaces_dir or settings.home / "workspaces"
        make_home_private(settings.home, skip=(workspaces,))
        database = await Database.connect(settings.database_url, settings.storage)
        try:
            await migrate(database, CORE_MIGRATIONS)
            # The default tenant is part of every store's initial state.
            await TenantStore(database).ensure(DEFAULT_TENANT)
            redis = (
                await connect_redis(settings.storage.redis_url)
                if settings.storage.redis_url
                else None
            )
        except BaseException:
            await database.close()
            raise
        changes = open_auth_changes(database)
        await changes.start()
        key_cache: VerifiedCache[ApiKey] = VerifiedCache(changes, settings.auth.key_cache_ttl_s)
        return cls(
            settings,
            database,
            TenantStore(database, changes),
            ApiKeyStore(database, key_cache),
            AuditLog(database),
            redis,
            changes,
        )

    def secrets(self) -> SecretStore:
        """Named secrets, encrypted at rest (``roost secrets``)."""
        return SecretStore(self.database, self.audit, self.settings)

    async def default_tenant_id(self) -> str:
        tenant, _ = await self.tenants.ensure(DEFAULT_TENANT)
        return tenant.id

    async def close(self) -> None:
        await self.auth_changes.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.close()

    async def check_ready(self) -> dict[str, str]:
        """Ping every backing service; raise StorageUnavailable on the first that fails."""
        await self.database.ping()
        checks = {"database": "ok"}
        if self.redis is not None:
            await self.redis.check()
            checks["redis"] = "ok"
        return checks


@dataclass(frozen=True, slots=True)
class BootstrapReport:
    """What the first start (or every start) set up for the default tenant."""

    tenant: Tenant
    created_key: str | None  # plaintext of a key made now: shown once, never stored
    seeded_key_id: str | None


async def bootstrap(platform: Platform) -> BootstrapReport:
    """Seed the configured key, or make a first key when the default tenant has none at all."""
    tenant, _ = await platform.tenants.ensure(DEFAULT_TENANT)
    created_key: str | None = None
    seeded_key_id: str | None = None
    bootstrap_key = platform.settings.auth.bootstrap_key
    if bootstrap_key is not None:
        key, is_new = await platform.api_keys.seed(
            tenant.id, "bootstrap", bootstrap_key.get_secret_value(), operator=True
        )
        seeded_key_id = key.id
        if is_new:
            await platform.audit.record(tenant.id, "system", "api_key.seed", target=key.id)
    elif not await platform.api_keys.list(tenant.id):
        # The first key is the operator's: it manages tenants, models and every cache.
        key, created_key = await platform.api_keys.create(tenant.id, "default", operator=True)
        await platform.audit.record(tenant.id, "system", "api_key.create", target=key.id)
    return BootstrapReport(tenant, created_key, seeded_key_id)
