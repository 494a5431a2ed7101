"""Budgets: admission-time reservation settled to actual cost, never overspent under
concurrency, on SQLite and PostgreSQL; usage records and summaries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.config import LLMBudgetSettings
from roost.llm.base import RequestContext
from roost.llm.budgets import BudgetLedger
from roost.llm.cost import NANO_PER_USD, Price, PriceTable
from roost.llm.errors import BudgetExceeded
from roost.llm.messages import Message, ModelSettings, Usage
from roost.llm.providers import ProviderRegistry
from roost.llm.router import Router
from roost.llm.schema import LLM_MIGRATIONS
from roost.llm.service import LLMService
from roost.llm.testing import CallInfo, FunctionModel
from roost.llm.usage import UsageStore
from roost.storage import Database, migrate

CENT = NANO_PER_USD // 100


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'roost.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = await Database.connect(url)
    await migrate(db, LLM_MIGRATIONS)
    try:
        yield db
    finally:
        await db.close()


def budget(limit_usd: float, **kwargs: str) -> LLMBudgetSettings:
    return LLMBudgetSettings(limit_usd=limit_usd, **kwargs)  # type: ignore[arg-type]


async def test_fifty_concurrent_reservations_never_exceed_the_budget(database: Database) -> None:
    ledger = BudgetLedger(database, [budget(0.10)])  # ten cents
    admitted: list[int] = []
    refused = 0
    all_tried = asyncio.Event()
    tried = 0

    async def one(i: int) -> None:
        nonlocal refused, tried
        try:
            reservation = await ledger.reserve("t1", None, CENT)
        except BudgetExceeded:
            refused += 1
            reservation = None
        tried += 1
        if tried == 50:
            all_tried.set()
        if reservation is not None:
            admitted.append(i)
            await all_tried.wait()  # hold the money until everyone has asked
            await ledger.settle(reservation, CENT)

    await asyncio.gather(*(one(i) for i in range(50)))
    assert len(admitted) == 10
    assert refused == 40
    [status] = await ledger.status("t1")
    assert status["spent_usd"] == pytest.approx(0.10)
    assert status["reserved_usd"] == 0


async def test_settling_below_the_estimate_frees_the_difference(database: Database) -> None:
    ledger = BudgetLedger(database, [budget(0.05)])
    held = await ledger.reserve("t1", None, 4 * CENT)
    with pytest.raises(BudgetExceeded, match=r"budget of \$0.05 this month"):
        await ledger.reserve("t1", None, 2 * CENT)
    await ledger.settle(held, CENT)  # the call was cheaper than feared
    await ledger.reserve("t1", None, 2 * CENT)
    [status] = await ledger.status("t1")
    assert status["spent_usd"] == pytest.approx(0.01)
    assert status["reserved_usd"] == pytest.approx(0.02)


async def test_key_budget_applies_alongside_the_tenant_budget(database: Database) -> None:
    ledger = BudgetLedger(database, [budget(1.0), budget(0.02, key="k1")])
    await ledger.reserve("t1", "k1", 2 * CENT)
    with pytest.raises(BudgetExceeded, match="API key's budget"):
        await ledger.reserve("t1", "k1", CENT)
    # The refused request held nothing: the transaction rolled back the tenant's part.
    statuses = {s["scope"]: s for s in await ledger.status("t1", "k1")}
    assert statuses["tenant:t1"]["reserved_usd"] == pytest.approx(0.02)
    await ledger.reserve("t1", "k2", CENT)  # another key of the tenant still works


async def test_free_requests_and_unbudgeted_tenants_are_never_refused(database: Database) -> None:
    ledger = BudgetLedger(database, [budget(0.0, tenant="t1")])
    assert (await ledger.reserve("t1", None, 0)).is_empty  # a local model costs nothing
    with pytest.raises(BudgetExceeded):
        await ledger.reserve("t1", None, 1)
    assert (await ledger.reserve("t2", None, 10 * CENT)).is_empty  # no budget for t2


async def test_stale_reservations_are_released_once(database: Database) -> None:
    ledger = BudgetLedger(database, [budget(0.05)])
    held = await ledger.reserve("t1", None, 5 * CENT)
    assert await ledger.release_stale(older_than_ms=-1000) == 1
    await ledger.settle(held, CENT)  # settling after release must not subtract twice
    [status] = await ledger.status("t1")
    assert status["reserved_usd"] == 0
    assert status["spent_usd"] == pytest.approx(0.01)


def priced_service(database: Database, limit_usd: float, gate: asyncio.Event) -> LLMService:
    async def answer(info: CallInfo) -> str:
        await gate.wait()
        return "fine"

    registry = ProviderRegistry(env={})
    registry.register(FunctionModel(answer, "test:priced"))
    # $1 per 1M input and output tokens
    prices = PriceTable({"test:priced": Price(1.0, 1.0)}, "test")
    router = Router(registry, prices=prices)
    router.add_group("chat", [("test:priced", 1.0)])
    return LLMService(
        router,
        usage=UsageStore(database),
        budgets=BudgetLedger(database, [budget(limit_usd)]),
        reserve_max_tokens=1000,
    )


async def test_fifty_concurrent_calls_through_the_service_stay_within_budget(
    database: Database,
) -> None:
    gate = asyncio.Event()
    service = priced_service(database, limit_usd=0.01, gate=gate)
    context = RequestContext("t1", key_id="k1")
    messages = [Message.user("hello")]
    group = service.router.resolve("chat")
    estimate = service.estimate_cost_nano(group, messages, ModelSettings(), ())
    assert estimate > 0

    expected = (0.01 * NANO_PER_USD) // estimate
    refusals: list[BudgetExceeded] = []
    all_refused = asyncio.Event()

    async def call() -> str:
        try:
            return (await service.request("chat", messages, context=context)).text
        except BudgetExceeded as exc:
            refusals.append(exc)
            if len(refusals) == 50 - expected:
                all_refused.set()
            return "refused"

    tasks = [asyncio.create_task(call()) for _ in range(50)]
    await all_refused.wait()  # the admitted ones still hold their reservations
    gate.set()
    results = await asyncio.gather(*tasks)
    assert results.count("fine") == expected
    assert all(r.status == 429 and r.retry_after_s for r in refusals)
    summary = await service.usage.summary("t1", since_ms=0)  # type: ignore[union-attr]
    assert summary["total_calls"] == results.count("fine")
    assert float(summary["total_cost_usd"]) <= 0.01  # type: ignore[arg-type]
    [status] = await service.budgets.status("t1")  # type: ignore[union-attr]
    assert status["reserved_usd"] == 0
    assert status["spent_usd"] == pytest.approx(summary["total_cost_usd"])


async def test_usage_summary_groups_by_model_and_key(database: Database) -> None:
    gate = asyncio.Event()
    gate.set()
    service = priced_service(database, limit_usd=100, gate=gate)
    await service.request("chat", [Message.user("a b c")], context=RequestContext("t1", "k1"))
    await service.request("chat", [Message.user("d e")], context=RequestContext("t1", "k2"))
    await service.request("chat", [Message.user("x")], context=RequestContext("t2", "k3"))
    by_model = await service.usage.summary("t1", since_ms=0)  # type: ignore[union-attr]
    assert by_model["total_calls"] == 2
    [row] = by_model["rows"]  # type: ignore[misc]
    assert row["model"] == "test:priced"
    assert row["input_tokens"] == 5
    assert row["output_tokens"] == 2
    assert row["cost_usd"] == pytest.approx(7 / 1_000_000)
    by_key = await service.usage.summary("t1", since_ms=0, group_by="key")  # type: ignore[union-attr]
    assert sorted(r["key"] for r in by_key["rows"]) == ["k1", "k2"]  # type: ignore[union-attr]
    by_day = await service.usage.summary("t1", since_ms=0, group_by="day")  # type: ignore[union-attr]
    assert len(by_day["rows"]) == 1  # type: ignore[arg-type]


def test_price_table_ships_versioned_and_accepts_overrides() -> None:
    from roost.config import LLMPriceSettings

    shipped = PriceTable.load()
    assert shipped.version
    assert shipped.get("openai:gpt-4.1-mini") is not None
    table = PriceTable.load({"openai:gpt-4.1-mini": LLMPriceSettings(input=1, output=2)})
    assert table.version.endswith("+local")
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_input_tokens=500_000)
    # cached input priced like input when no cached price is set
    assert table.cost_nano("openai:gpt-4.1-mini", usage) == 3 * NANO_PER_USD
    assert shipped.cost_nano("local:smollm2", usage) == 0


async def test_budgeted_requests_without_max_tokens_are_capped_at_the_reservation(
    database: Database,
) -> None:
    gate = asyncio.Event()
    gate.set()
    service = priced_service(database, limit_usd=1.0, gate=gate)
    model = service.router.registry.model("test:priced")
    await service.request("chat", [Message.user("hi")], context=RequestContext("t1"))
    assert model.last_call.settings.max_tokens == 1000  # type: ignore[attr-defined]
    await service.request(
        "chat", [Message.user("hi")], ModelSettings(max_tokens=5), context=RequestContext("t1")
    )
    assert model.last_call.settings.max_tokens == 5  # type: ignore[attr-defined]


async def test_stream_abandoned_by_the_caller_settles_its_reservation(database: Database) -> None:
    gate = asyncio.Event()
    gate.set()
    service = priced_service(database, limit_usd=1.0, gate=gate)
    stream = service.request_stream(
        "chat", [Message.user("tell me a story")], context=RequestContext("t1")
    )
    async for _ in stream:
        break  # the client went away after the first piece
    await stream.aclose()  # type: ignore[attr-defined]
    [status] = await service.budgets.status("t1")  # type: ignore[union-attr]
    assert status["reserved_usd"] == 0
    assert status["spent_usd"] > 0  # what was delivered is charged
    rows = await database.fetch_all("SELECT status FROM llm_usage WHERE tenant_id = 't1'")
    assert [r["status"] for r in rows] == ["cancelled"]
