"""The server's LLM upkeep loop probes open circuits and releases stale reservations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roost.config import LLMBudgetSettings
from roost.llm.budgets import BudgetLedger
from roost.llm.errors import ProviderUnavailable
from roost.llm.health import CircuitState
from roost.llm.messages import Message
from roost.llm.providers import ProviderRegistry
from roost.llm.retry import FailoverRetryPolicy
from roost.llm.router import Router
from roost.llm.schema import LLM_MIGRATIONS
from roost.llm.service import LLMService
from roost.platform import wiring as usage_layer
from roost.storage import Database, migrate
from tests.llm.scripted import FakeClock, ScriptedModel


async def test_one_round_closes_recovered_circuits_and_frees_stale_money(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await Database.connect(f"sqlite:///{tmp_path / 'u.db'}")
    await migrate(db, LLM_MIGRATIONS)
    clock = FakeClock()
    model = ScriptedModel("a:m")
    model.fail(ProviderUnavailable("down", deployment="a:m"))
    registry = ProviderRegistry(env={})
    registry.register(model)
    router = Router(
        registry, clock=clock, retry=FailoverRetryPolicy(max_retries=0), failure_threshold=1
    )
    router.add_group("chat", [("a:m", 1.0)])
    ledger = BudgetLedger(db, [LLMBudgetSettings(limit_usd=1.0)])
    service = LLMService(router, budgets=ledger)
    with pytest.raises(ProviderUnavailable):
        await router.request("chat", [Message.user("hi")])
    assert router.health("a:m").state is CircuitState.OPEN
    await ledger.reserve("t1", None, 10_000_000)
    monkeypatch.setattr(usage_layer, "STALE_RESERVATION_MS", -1000)  # everything is stale
    rounds = 0

    async def sleep(seconds: float) -> None:
        nonlocal rounds
        assert seconds == 600.0
        rounds += 1
        clock.advance(seconds)  # past the circuit's reset time
        if rounds == 2:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await usage_layer.llm_upkeep(service, probe_interval_s=600.0, sleep=sleep)
    assert router.health("a:m").state is CircuitState.CLOSED
    [status] = await ledger.status("t1")
    assert status["reserved_usd"] == 0
    await db.close()
