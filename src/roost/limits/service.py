"""The limiter: rate (requests and tokens per minute) and concurrency limits per tenant
and per API key, and brute-force throttling of failed key attempts, on one shared store.

How it fails: every check fails closed. When the store cannot be reached the request is
refused with 503 (:class:`~roost.errors.Overloaded`) naming the store, never let through
unlimited; a concurrency slot whose release fails expires after ``limits.lease_ttl_s``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from roost.config import LimitOverride, Settings
from roost.errors import ConfigError, Overloaded, RateLimited, StorageUnavailable
from roost.limits.buckets import Bucket, Lease, Mode, Verdict
from roost.limits.overrides import LimitOverrideStore
from roost.limits.policy import ScopeLimits, TenantPolicy, resolve
from roost.limits.schema import LIMIT_MIGRATIONS
from roost.limits.store import LimitStore
from roost.observe.logging import get_logger
from roost.security.api_keys import split_key
from roost.storage import Database, migrate

if TYPE_CHECKING:
    from roost.storage.redis import RedisClient

log = get_logger("roost.limits")
MINUTE_S = 60.0


@dataclass(slots=True)
class Admission:
    """A request let in; :meth:`release` gives its concurrency slots back.

    Corrections of its tokens/min estimate made while it runs (:meth:`Limiter.settle_tokens`
    inside the request) wait here and go to the store with the release, in the same round
    trip: the end of a model call costs one round trip, not two.
    """

    store: LimitStore | None = None
    leases: list[Lease] = field(default_factory=list)
    settlements: list[Bucket] = field(default_factory=list)
    released: bool = False

    def defer(self, buckets: list[Bucket]) -> bool:
        """Keep ``buckets`` (FORCE debits) for :meth:`release`; False once it is too late."""
        if self.store is None or self.released:
            return False
        self.settlements.extend(buckets)
        return True

    async def release(self) -> None:
        leases, self.leases = self.leases, []
        settlements, self.settlements = self.settlements, []
        self.released = True
        if self.store is None or not (leases or settlements):
            return
        try:
            await self.store.finish(settlements, [(lease.key, lease.lease_id) for lease in leases])
        except StorageUnavailable:
            # Not refused and not lost: the slots free themselves when the leases expire.
            log.warning("limit leases not released; they expire on their own")


# The admission of the request being served (set by the server's limit middleware), so a
# token correction deep inside the model call can ride along with the slot's release.
current_admission: ContextVar[Admission | None] = ContextVar("roost_admission", default=None)

NO_LIMITS = Admission()


class Limiter:
    """Opened once by the kernel; the server's middleware and the metered chat ask it."""

    def __init__(self, settings: Settings, store: LimitStore, overrides: LimitOverrideStore):
        self.settings = settings.limits
        self.store = store
        self.overrides = overrides
        self._policies: dict[str, tuple[LimitOverride | None, TenantPolicy]] = {}

    @classmethod
    async def open(
        cls, settings: Settings, database: Database, redis: RedisClient | None
    ) -> Limiter:
        await migrate(database, LIMIT_MIGRATIONS)
        overrides = LimitOverrideStore(database, refresh_s=settings.limits.overrides_refresh_s)
        return cls(settings, open_store(settings, database, redis), overrides)

    async def close(self) -> None:
        await self.store.close()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def policy(self, tenant_id: str) -> TenantPolicy:
        override = await self._override(tenant_id)
        cached = self._policies.get(tenant_id)
        # Resolved once per override the store hands out, not on every request.
        if cached is not None and cached[0] is override:
            return cached[1]
        policy = resolve(self.settings, tenant_id, override)
        self._policies[tenant_id] = (override, policy)
        return policy

    async def set_override(self, tenant_id: str, override: LimitOverride) -> TenantPolicy:
        await self.overrides.put(tenant_id, override)
        return await self.policy(tenant_id)

    async def admit(
        self,
        tenant_id: str,
        key_id: str | None,
        *,
        concurrent: bool,
        address: str | None = None,
    ) -> Admission:
        """Count one request against requests/min and, when ``concurrent`` (a model call),
        take a concurrency slot of the tenant and of the key; raise 429 when a limit is
        reached or the key or address is locked out by failed attempts, 503 when the store
        is down. One round trip to the store."""
        if not self.enabled:
            return NO_LIMITS
        policy = await self.policy(tenant_id)
        # Checked, not debited: a correct key is refused too while its id is locked out.
        buckets = self._login_buckets(key_id, address, debit=False)
        lockouts = {bucket.name for bucket in buckets}
        leases: list[Lease] = []
        for scope, limits, label in self._scopes(policy, tenant_id, key_id):
            if limits.requests_per_minute:
                buckets.append(
                    Bucket(f"rpm:{scope}", limits.requests_per_minute, MINUTE_S, 1.0,
                           f"requests_per_minute of {label} ({limits.requests_per_minute}/min)")
                )  # fmt: skip
            if concurrent and limits.concurrency:
                leases.append(
                    Lease(f"conc:{scope}", limits.concurrency, secrets.token_hex(8),
                          self.settings.lease_ttl_s,
                          f"concurrency of {label} ({limits.concurrency} at once)")
                )  # fmt: skip
        if not buckets and not leases:
            return NO_LIMITS
        verdict = await self._acquire(buckets, leases, Mode.TAKE)
        await self._enforce(verdict, login=verdict.limit in lockouts)
        return Admission(self.store, leases)

    async def take_tokens(self, tenant_id: str, key_id: str | None, tokens: int) -> None:
        """Debit ``tokens`` (prompt + max output, estimated before the call) from the
        tokens/min buckets of the tenant and key, or raise 429 (503 when the store is down)."""
        buckets = await self._token_buckets(tenant_id, key_id, tokens)
        if buckets:
            await self._enforce(await self._acquire(buckets, (), Mode.TAKE))

    async def settle_tokens(self, tenant_id: str, key_id: str | None, delta: int) -> None:
        """Correct the estimate by ``delta`` (actual minus estimated; negative refunds)."""
        if delta == 0:
            return
        buckets = await self._token_buckets(tenant_id, key_id, delta)
        admission = current_admission.get()
        if buckets and admission is not None and admission.defer(buckets):
            return
        if buckets:
            with contextlib.suppress(StorageUnavailable):  # the call is over; nothing to refuse
                await self.store.acquire(buckets, (), Mode.FORCE)

    async def record_login_failure(self, presented: str, address: str | None) -> None:
        """Count a failed key attempt against its key id and the client address; raise 429
        once either is locked out (so the caller answers that instead of 401)."""
        key_id, _ = split_key(presented)
        buckets = self._login_buckets(key_id, address, debit=True)
        if not buckets:
            return
        with contextlib.suppress(StorageUnavailable):  # this attempt is refused anyway
            await self.store.acquire(buckets, (), Mode.FORCE)
            await self._enforce(await self.store.acquire(buckets, (), Mode.CHECK), login=True)

    async def reset(self, tenant_id: str) -> int:
        """Forget the buckets and slots of a tenant and its keys (not the login throttle)."""
        count = 0
        for kind in ("rpm", "tpm", "conc"):
            count += await self.store.reset(f"{kind}:tenant:{tenant_id}")
            count += await self.store.reset(f"{kind}:key:{tenant_id}/")
        return count

    # -- internals ---------------------------------------------------------------------------

    async def _override(self, tenant_id: str) -> LimitOverride | None:
        try:
            return await self.overrides.get(tenant_id)
        except (StorageUnavailable, DBAPIError, OSError) as exc:
            raise Overloaded("limits cannot be checked: the database does not answer") from exc

    @staticmethod
    def _scopes(
        policy: TenantPolicy, tenant_id: str, key_id: str | None
    ) -> list[tuple[str, ScopeLimits, str]]:
        scopes: list[tuple[str, ScopeLimits, str]] = []
        if key_id is not None:
            scopes.append((f"key:{tenant_id}/{key_id}", policy.key, f"API key {key_id}"))
        scopes.append((f"tenant:{tenant_id}", policy.tenant, f"tenant {tenant_id}"))
        return scopes

    async def _token_buckets(self, tenant_id: str, key_id: str | None, cost: int) -> list[Bucket]:
        if not self.enabled:
            return []
        policy = await self.policy(tenant_id)
        buckets = []
        for scope, limits, label in self._scopes(policy, tenant_id, key_id):
            tpm = limits.tokens_per_minute
            if tpm:
                buckets.append(
                    Bucket(f"tpm:{scope}", tpm, MINUTE_S, float(cost),
                           f"tokens_per_minute of {label} ({tpm}/min)")
                )  # fmt: skip
        return buckets

    def _login_buckets(
        self, key_id: str | None, address: str | None, *, debit: bool
    ) -> list[Bucket]:
        auth = self.settings.auth
        if not self.enabled:
            return []
        buckets = []
        if key_id and auth.failures_per_key:
            buckets.append(
                Bucket(f"authfail:key:{key_id}", auth.failures_per_key, auth.window_s, 1.0,
                       f"failed attempts for API key {key_id} ({auth.failures_per_key} per"
                       f" {auth.window_s:g} s)", debit)
            )  # fmt: skip
        if address and auth.failures_per_address:
            buckets.append(
                Bucket(f"authfail:addr:{address}", auth.failures_per_address, auth.window_s, 1.0,
                       f"failed attempts from {address} ({auth.failures_per_address} per"
                       f" {auth.window_s:g} s)", debit)
            )  # fmt: skip
        return buckets

    async def _acquire(
        self, buckets: Sequence[Bucket], leases: Sequence[Lease], mode: Mode
    ) -> Verdict:
        try:
            return await self.store.acquire(buckets, leases, mode)
        except StorageUnavailable as exc:
            # Fail closed: a limit that cannot be checked refuses, it never waves through.
            raise Overloaded(f"limits cannot be checked: {exc.message}") from exc

    @staticmethod
    async def _enforce(verdict: Verdict, *, login: bool = False) -> None:
        if verdict.allowed:
            return
        retry = verdict.retry_after_s or 1.0
        what = "too many failed API key attempts" if login else "rate limit reached"
        raise RateLimited(
            f"{what}: {verdict.limit}; retry after {max(1, round(retry))} s",
            retry_after_s=retry,
            limit=verdict.limit,
        )


def open_store(settings: Settings, database: Database, redis: RedisClient | None) -> LimitStore:
    """Redis when configured (``limits.store`` auto or redis), else the database."""
    choice = settings.limits.store
    if choice == "redis" and redis is None:
        raise ConfigError([("limits.store", "is redis but storage.redis_url is not set")])
    if redis is not None and choice in ("auto", "redis"):
        from roost.limits.redis_store import RedisLimitStore

        return RedisLimitStore(redis)
    if database.dialect == "sqlite":
        from roost.limits.sqlite_store import SqliteLimitStore

        path = make_url(database.url).database or ""
        return SqliteLimitStore(Path(path), busy_timeout_ms=settings.storage.busy_timeout_ms)
    from roost.limits.postgres_store import PostgresLimitStore

    return PostgresLimitStore(
        database,
        pool_size=min(settings.storage.pool_size, 8),
        timeout_s=settings.storage.connect_timeout_s,
    )
