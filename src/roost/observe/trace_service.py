"""The trace store as a kernel service: store, batch writer, per-tenant policy, retention.

Opened by the kernel in every process that makes spans (server, worker); the CLI reads
through :class:`TraceStore` alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from roost.config import TracingSettings
from roost.observe.logging import get_logger
from roost.observe.span_record import CostOf
from roost.observe.trace_policy import TracePolicies
from roost.observe.trace_schema import TRACE_MIGRATIONS
from roost.observe.trace_store import TraceStore
from roost.observe.trace_writer import TraceWriter
from roost.observe.tracing import SPAN_ROUTING, configure_tracing, set_content_policy
from roost.storage import Database, migrate

log = get_logger("roost.observe")
DAY_US = 86_400 * 1_000_000
TenantList = Callable[[], Awaitable[Iterable[tuple[str, str]]]]


class TraceService:
    def __init__(self, store: TraceStore, writer: TraceWriter, policies: TracePolicies) -> None:
        self.store = store
        self.writer = writer
        self.policies = policies
        self._retention: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        database: Database,
        settings: TracingSettings,
        *,
        cost_of: CostOf | None = None,
        tenants: TenantList | None = None,
    ) -> TraceService:
        """Migrate, start the writer and attach it to this process's spans; with
        ``tenants`` (``(id, name)`` pairs) also start the retention job."""
        configure_tracing(settings)
        await migrate(database, TRACE_MIGRATIONS)
        policies = TracePolicies(settings)
        if tenants is not None:
            policies.learn(await tenants())
        writer = TraceWriter(
            TraceStore(database),
            policies,
            cost_of=cost_of,
            batch_size=settings.batch_size,
            flush_interval_s=settings.flush_interval_ms / 1000,
            max_queue=settings.max_queue,
        )
        service = cls(writer.store, writer, policies)
        writer.start()
        SPAN_ROUTING.attach(writer)
        set_content_policy(policies.records_content)
        if tenants is not None:
            service._retention = asyncio.create_task(
                service._retain_periodically(tenants, settings.retention_interval_s)
            )
        return service

    async def flush(self) -> int:
        """Write what this process has recorded so far (read-your-writes for queries)."""
        return await self.writer.flush()

    async def enforce_retention(
        self, tenants: Iterable[tuple[str, str]], *, now_us: int | None = None
    ) -> int:
        """Apply each tenant's retention (days, then bytes); returns traces deleted."""
        now_us = time.time_ns() // 1000 if now_us is None else now_us
        tenants = list(tenants)
        self.policies.learn(tenants)
        await self.flush()
        deleted = 0
        for tenant_id, _name in tenants:
            policy = self.policies.of(tenant_id)
            deleted += await self.store.enforce_retention(
                tenant_id,
                older_than_us=now_us - policy.retention_days * DAY_US,
                max_bytes=policy.retention_bytes,
            )
        return deleted

    async def close(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            await asyncio.gather(self._retention, return_exceptions=True)
        SPAN_ROUTING.detach(self.writer)
        set_content_policy(lambda _tenant_id: False)
        await self.writer.close()

    async def _retain_periodically(self, tenants: TenantList, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                deleted = await self.enforce_retention(await tenants())
                if deleted:
                    log.info("trace retention", traces_deleted=deleted)
            except Exception:  # retention tries again next round; serving goes on
                log.exception("trace retention failed")
