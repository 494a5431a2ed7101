"""The trace service on a real database: spans made in this process are written in batches
by the writer, per-tenant policy strips content and sets retention, a full queue drops."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from roost.config import TraceTenantPolicy, TracingSettings
from roost.observe.trace_service import DAY_US, TraceService
from roost.observe.trace_store import TraceFilter
from roost.observe.trace_writer import SPANS_DROPPED
from roost.observe.tracing import get_tracer
from roost.storage import Database

tracer = get_tracer("tests.observe")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = await Database.connect(database_url)
    try:
        yield db
    finally:
        await db.close()


async def open_service(database: Database, **settings: object) -> TraceService:
    config = TracingSettings(
        tenants={"acme": TraceTenantPolicy(record_content=True, retention_days=1)},
        **settings,  # type: ignore[arg-type]
    )

    async def tenants() -> list[tuple[str, str]]:
        return [("ten_acme", "acme"), ("ten_default", "default")]

    return await TraceService.open(database, config, tenants=tenants)


def make_span(tenant: str, name: str = "work", content: str | None = None) -> str:
    with tracer.start_as_current_span(name) as span:
        span.set_attribute("roost.tenant_id", tenant)
        if content is not None:
            span.set_attribute("gen_ai.input.messages", content)
        with tracer.start_as_current_span("child"):
            pass  # inherits the tenant from its parent
        return f"{span.get_span_context().trace_id:032x}"


async def test_spans_reach_the_store_with_children_inheriting_the_tenant(
    database: Database,
) -> None:
    service = await open_service(database)
    try:
        trace_id = make_span("ten_default")
        assert service.writer.num_queued == 2  # queued, not yet written: off the hot path
        assert await service.flush() == 2
        stored = await service.store.get_trace("ten_default", trace_id)
        assert stored is not None and stored["span_count"] == 2
        assert [c["name"] for c in stored["spans"][0]["children"]] == ["child"]
    finally:
        await service.close()


async def test_content_is_kept_only_for_tenants_whose_policy_allows_it(
    database: Database,
) -> None:
    service = await open_service(database)
    try:
        kept = make_span("ten_acme", content='[{"role":"user"}]')
        stripped = make_span("ten_default", content='[{"role":"user"}]')
        await service.flush()
        acme = await service.store.get_trace("ten_acme", kept)
        default = await service.store.get_trace("ten_default", stripped)
        assert acme is not None and default is not None
        assert "gen_ai.input.messages" in acme["spans"][0]["attributes"]
        assert "gen_ai.input.messages" not in default["spans"][0]["attributes"]
    finally:
        await service.close()


async def test_retention_follows_each_tenants_days(database: Database) -> None:
    service = await open_service(database, retention_days=30)
    try:
        acme, default = make_span("ten_acme"), make_span("ten_default")
        await service.flush()
        (acme_trace,) = (await service.store.list_traces("ten_acme", TraceFilter())).traces
        now_us = acme_trace["start_time_us"] + 2 * DAY_US  # two days later
        deleted = await service.enforce_retention(
            [("ten_acme", "acme"), ("ten_default", "default")], now_us=now_us
        )
        assert deleted == 1  # acme keeps 1 day, default 30
        assert await service.store.get_trace("ten_acme", acme) is None
        assert await service.store.get_trace("ten_default", default) is not None
    finally:
        await service.close()


async def test_a_full_queue_drops_and_counts_instead_of_blocking(database: Database) -> None:
    service = await open_service(database, max_queue=3)
    dropped = SPANS_DROPPED.labels("queue_full")
    before = dropped._value.get()
    try:
        make_span("ten_default")
        make_span("ten_default")  # 4 spans offered, room for 3
        assert service.writer.num_queued == 3
        assert dropped._value.get() == before + 1
    finally:
        await service.close()


async def test_closing_writes_what_is_queued_and_detaches(database: Database) -> None:
    service = await open_service(database)
    trace_id = make_span("ten_default")
    await service.close()
    assert await service.store.get_trace("ten_default", trace_id) is not None
    make_span("ten_default")
    assert service.writer.num_queued == 0  # no longer attached
