"""Group commit of per-call writes: concurrent calls share transactions, each waits for
its own commit, and one failing write does not lose the others; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from roost.config import LLMBudgetSettings
from roost.llm.base import RequestContext
from roost.llm.budgets import BudgetLedger
from roost.llm.cost import Price, PriceTable
from roost.llm.group_commit import GroupCommitter
from roost.llm.messages import Message, ModelSettings
from roost.llm.providers import ProviderRegistry
from roost.llm.router import Router
from roost.llm.schema import LLM_MIGRATIONS
from roost.llm.service import LLMService
from roost.llm.testing import FunctionModel
from roost.llm.usage import UsageStore
from roost.storage import Database, migrate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'roost.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = await Database.connect(url)
    await migrate(db, LLM_MIGRATIONS)
    await db.execute("CREATE TABLE marks (n INTEGER PRIMARY KEY)")
    try:
        yield db
    finally:
        await db.close()


def mark(n: int):  # type: ignore[no-untyped-def]
    async def write(conn: AsyncConnection) -> None:
        await conn.execute(text("INSERT INTO marks (n) VALUES (:n)"), {"n": n})

    return write


async def count_marks(database: Database) -> int:
    row = await database.fetch_one("SELECT COUNT(*) AS n FROM marks")
    assert row is not None
    return int(row["n"])


async def test_concurrent_writes_share_transactions_and_each_waits_for_its_commit(
    database: Database,
) -> None:
    committer = GroupCommitter(database)

    async def one(n: int) -> int:
        await committer.run(mark(n))
        # Committed before run returned: a fresh connection sees it.
        row = await database.fetch_one("SELECT n FROM marks WHERE n = :n", {"n": n})
        assert row is not None
        return n

    assert sorted(await asyncio.gather(*(one(n) for n in range(200)))) == list(range(200))
    assert await count_marks(database) == 200
    assert committer.num_commits < 50  # batched, not one transaction per write


async def test_a_failing_write_fails_alone(database: Database) -> None:
    committer = GroupCommitter(database)
    results = await asyncio.gather(
        *(committer.run(mark(n)) for n in range(10)),
        committer.run(mark(3)),  # a duplicate key: this one write fails
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, Exception)] and results[-1] is not None
    assert all(r is None for r in results[:10])
    assert await count_marks(database) == 10


async def test_a_caller_that_stops_waiting_still_has_its_write_committed(
    database: Database,
) -> None:
    committer = GroupCommitter(database)
    blocker = asyncio.ensure_future(committer.run(mark(1)))
    waiter = asyncio.ensure_future(committer.run(mark(2)))
    await asyncio.sleep(0)  # both queued
    waiter.cancel()
    await blocker
    await committer.aclose()
    assert await count_marks(database) == 2


async def test_one_hundred_concurrent_calls_are_all_recorded_and_charged(
    database: Database,
) -> None:
    model = FunctionModel(lambda info: "ok", "test:priced")
    registry = ProviderRegistry(env={})
    registry.register(model)
    prices = PriceTable({"test:priced": Price(1_000_000.0, 1_000_000.0)}, "test")
    router = Router(registry, prices=prices)
    router.add_group("chat", [("test:priced", 1.0)])
    budget = LLMBudgetSettings(limit_usd=100_000, period="day")  # type: ignore[call-arg]
    usage = UsageStore(database)
    service = LLMService(router, usage=usage, budgets=BudgetLedger(database, [budget]))
    context = RequestContext("t1")
    settings = ModelSettings(max_tokens=4)
    answers = await asyncio.gather(
        *(
            service.request("chat", [Message.user(f"q{i}")], settings, context=context)
            for i in range(100)
        )
    )
    await service.aclose()
    summary = await usage.summary("t1", since_ms=0)
    assert summary["total_calls"] == 100
    expected = sum(a.usage.input_tokens + a.usage.output_tokens for a in answers)  # $1 a token
    assert summary["total_cost_usd"] == pytest.approx(expected)
    [status] = await service.budgets.status("t1")  # type: ignore[union-attr]
    assert status["spent_usd"] == pytest.approx(expected)
    assert status["reserved_usd"] == 0
