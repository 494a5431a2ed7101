"""Metering of every model call: budgets reserved before it, and after it one usage row
(tenant, key, agent, model; tokens in, out and cached; latency; cost) written in the same
transaction as the budget settlement.

The gateway and agents reach it through :class:`~roost.llm.service.LLMService`; calls to
the local engine from the OpenAI and Anthropic endpoints through
:class:`~roost.llm.local_chat.MeteredChat`. Local models cost 0 unless ``[llm.prices]``
prices them, but their tokens count against token budgets all the same.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from roost.llm.base import RequestContext
from roost.llm.budgets import EMPTY_RESERVATION, BudgetLedger, Reservation
from roost.llm.cost import PriceTable
from roost.llm.group_commit import GroupCommitter
from roost.llm.messages import Usage
from roost.llm.usage import CacheResult, UsageRecord, UsageStatus, UsageStore


class TokenLimits(Protocol):
    """Tokens-per-minute limits (:class:`roost.limits.service.Limiter`), for HTTP callers."""

    async def take_tokens(self, tenant_id: str, key_id: str | None, tokens: int) -> None: ...

    async def settle_tokens(self, tenant_id: str, key_id: str | None, delta: int) -> None: ...


class Meter:
    def __init__(
        self,
        prices: PriceTable,
        usage: UsageStore | None,
        budgets: BudgetLedger | None,
        writes: GroupCommitter | None,
    ) -> None:
        self.prices = prices
        self.usage = usage
        self.budgets = budgets
        self.writes = writes

    async def reserve(self, context: RequestContext, *, cost_nano: int, tokens: int) -> Reservation:
        """Hold the call's worst case (money and tokens) against every budget that applies,
        or raise :class:`~roost.llm.errors.BudgetExceeded`."""
        if self.budgets is None:
            return EMPTY_RESERVATION
        return await self.budgets.reserve(
            context.tenant_id, context.key_id, cost_nano, tokens=tokens
        )

    async def record(
        self,
        reservation: Reservation,
        context: RequestContext,
        model_id: str,
        usage: Usage,
        latency_ms: int,
        status: UsageStatus,
        *,
        cache: CacheResult = "off",
        group: str | None = None,
    ) -> int:
        """Settle ``reservation`` to what the call used and write its usage row; return
        its cost in nano-dollars."""
        cost = self.prices.cost_nano(model_id, usage)
        if self.writes is None:
            return cost
        record = UsageRecord(
            context, model_id, usage, cost, latency_ms, status, cache,
            model_group=group, price_version=self.prices.version,
        )  # fmt: skip
        budgets, store = self.budgets, self.usage

        async def write(conn: AsyncConnection) -> None:
            # One transaction: the budget never shows a cost the usage log does not.
            if budgets is not None:
                await budgets.settle(reservation, cost, conn, actual_tokens=usage.total_tokens)
            if store is not None:
                await store.record(record, conn)

        await self.writes.run(write)
        return cost
