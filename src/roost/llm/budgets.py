"""Spending budgets per tenant and per API key, in money and in tokens, safe under
concurrency.

Admission reserves the request's worst-case cost (and token count) with one conditional
UPDATE per scope (``spent + reserved + amount <= limit``) inside one transaction, so two
requests can never both take the last dollar; settling swaps the reservation for the
actual cost. Reservations are rows too, so ones left by a crashed process can be
released. Works the same on SQLite (serialised by ``BEGIN IMMEDIATE``) and PostgreSQL
(row locks; the WHERE is re-checked after waiting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from roost.config import LLMBudgetSettings
from roost.llm import telemetry
from roost.llm.cost import NANO_PER_USD, usd
from roost.llm.errors import BudgetExceeded
from roost.storage import Database, new_id, now_ms


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """One limit that applies to a request: ``tenant:<id>`` or ``key:<id>`` for a period,
    in nano-dollars, or in tokens (``tokens:tenant:<id>``, ``tokens:key:<id>``)."""

    scope: str
    period: str  # "day", "month" or "total"
    limit: int  # nano-dollars, or tokens
    unit: str = "usd"  # "usd" or "tokens"

    @property
    def limit_nano(self) -> int:
        return self.limit


@dataclass(frozen=True, slots=True)
class HeldEntry:
    scope: str
    period: str  # the period key, e.g. "m:2025-06"
    amount: int  # nano-dollars or tokens held
    unit: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money and tokens held for one in-flight request."""

    id: str
    amount_nano: int
    entries: tuple[HeldEntry, ...]
    tokens: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.entries


EMPTY_RESERVATION = Reservation("", 0, ())


def period_key(period: str, at: datetime) -> str:
    if period == "day":
        return at.strftime("d:%Y-%m-%d")
    if period == "month":
        return at.strftime("m:%Y-%m")
    return "total"


def seconds_to_period_end(period: str, at: datetime) -> float | None:
    if period == "day":
        end = (at + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    elif period == "month":
        year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
        end = at.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        return None
    return (end - at).total_seconds()


class BudgetLedger:
    """Reserve, settle and report budgets configured under ``[[llm.budgets]]``."""

    def __init__(self, database: Database, budgets: Sequence[LLMBudgetSettings]) -> None:
        self.database = database
        self.budgets = list(budgets)

    def scopes_for(self, tenant_id: str, key_id: str | None) -> list[BudgetScope]:
        """The limits that apply to a caller: its tenant's (specific beats default) and its key's."""
        specific = [b for b in self.budgets if b.tenant == tenant_id and b.key is None]
        default = [b for b in self.budgets if b.tenant is None and b.key is None]
        scopes = [s for b in (specific or default) for s in _scopes(f"tenant:{tenant_id}", b)]
        if key_id is not None:
            scopes += [
                s for b in self.budgets if b.key == key_id for s in _scopes(f"key:{key_id}", b)
            ]
        return scopes

    async def reserve(
        self,
        tenant_id: str,
        key_id: str | None,
        amount_nano: int,
        *,
        tokens: int = 0,
        at: datetime | None = None,
    ) -> Reservation:
        """Hold ``amount_nano`` against every money budget and ``tokens`` against every
        token budget that applies, or raise :class:`BudgetExceeded`.

        A free request holds no money: free (local) models stay usable when the money is
        gone, but their tokens still count against token budgets.
        """
        held = {"usd": amount_nano, "tokens": tokens}
        scopes = [s for s in self.scopes_for(tenant_id, key_id) if held[s.unit] > 0]
        if not scopes:
            return EMPTY_RESERVATION
        at = at or datetime.now(UTC)
        reservation_id = new_id("rsv")
        now = now_ms()
        entries: list[HeldEntry] = []
        async with self.database.transaction() as conn:
            for scope in scopes:
                key = period_key(scope.period, at)
                amount = held[scope.unit]
                if not await self._hold(conn, scope, key, amount, now):
                    telemetry.LLM_BUDGET_REJECTIONS.inc()
                    raise await self._exceeded(conn, scope, key, amount, at)
                await conn.execute(
                    text(
                        "INSERT INTO llm_budget_reservations (id, scope, period, amount_nano, created_at)"
                        " VALUES (:id, :s, :p, :a, :t)"
                    ),
                    {"id": reservation_id, "s": scope.scope, "p": key, "a": amount, "t": now},
                )
                entries.append(HeldEntry(scope.scope, key, amount, scope.unit))
        return Reservation(reservation_id, amount_nano, tuple(entries), tokens)

    async def settle(
        self,
        reservation: Reservation,
        actual_nano: int,
        conn: AsyncConnection | None = None,
        *,
        actual_tokens: int = 0,
    ) -> None:
        """Replace the held amounts with the actual cost and tokens (pass ``conn`` to join
        a transaction)."""
        if reservation.is_empty:
            return
        actual = {"usd": actual_nano, "tokens": actual_tokens}
        if conn is None:
            async with self.database.transaction() as own:
                await self._settle(own, reservation, actual)
        else:
            await self._settle(conn, reservation, actual)

    async def release_stale(self, older_than_ms: int) -> int:
        """Release reservations older than ``older_than_ms`` (left by a crashed process)."""
        cutoff = now_ms() - older_than_ms
        async with self.database.transaction() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT scope, period, amount_nano FROM llm_budget_reservations"
                        " WHERE created_at < :c"
                    ),
                    {"c": cutoff},
                )
            ).all()
            for scope, period, amount in rows:
                await conn.execute(
                    text(
                        "UPDATE llm_budget_ledger SET reserved_nano = reserved_nano - :a"
                        " WHERE scope = :s AND period = :p"
                    ),
                    {"a": amount, "s": scope, "p": period},
                )
            await conn.execute(
                text("DELETE FROM llm_budget_reservations WHERE created_at < :c"), {"c": cutoff}
            )
        return len(rows)

    async def status(self, tenant_id: str, key_id: str | None = None) -> list[dict[str, object]]:
        """Limit, spent and reserved of each budget that applies to the caller, now."""
        at = datetime.now(UTC)
        result: list[dict[str, object]] = []
        for scope in self.scopes_for(tenant_id, key_id):
            key = period_key(scope.period, at)
            row = await self.database.fetch_one(
                "SELECT spent_nano, reserved_nano FROM llm_budget_ledger"
                " WHERE scope = :s AND period = :p",
                {"s": scope.scope, "p": key},
            )
            spent = int(row["spent_nano"]) if row else 0
            reserved = int(row["reserved_nano"]) if row else 0
            remaining = max(0, scope.limit - spent - reserved)
            if scope.unit == "tokens":
                result.append(
                    {"scope": scope.scope, "period": key, "limit_tokens": scope.limit,
                     "spent_tokens": spent, "reserved_tokens": reserved,
                     "remaining_tokens": remaining}
                )  # fmt: skip
                continue
            result.append(
                {
                    "scope": scope.scope,
                    "period": key,
                    "limit_usd": usd(scope.limit_nano),
                    "spent_usd": usd(spent),
                    "reserved_usd": usd(reserved),
                    "remaining_usd": usd(remaining),
                }
            )
        return result

    async def _hold(
        self, conn: AsyncConnection, scope: BudgetScope, key: str, amount: int, now: int
    ) -> bool:
        await conn.execute(
            text(
                "INSERT INTO llm_budget_ledger (scope, period, spent_nano, reserved_nano, updated_at)"
                " VALUES (:s, :p, 0, 0, :t) ON CONFLICT (scope, period) DO NOTHING"
            ),
            {"s": scope.scope, "p": key, "t": now},
        )
        result = await conn.execute(
            text(
                "UPDATE llm_budget_ledger SET reserved_nano = reserved_nano + :a, updated_at = :t"
                " WHERE scope = :s AND period = :p AND spent_nano + reserved_nano + :a <= :limit"
            ),
            {"a": amount, "t": now, "s": scope.scope, "p": key, "limit": scope.limit},
        )
        return bool(result.rowcount)

    async def _exceeded(
        self, conn: AsyncConnection, scope: BudgetScope, key: str, amount: int, at: datetime
    ) -> BudgetExceeded:
        row = (
            await conn.execute(
                text(
                    "SELECT spent_nano, reserved_nano FROM llm_budget_ledger"
                    " WHERE scope = :s AND period = :p"
                ),
                {"s": scope.scope, "p": key},
            )
        ).first()
        spent, reserved = (int(row[0]), int(row[1])) if row else (0, 0)
        what = "tenant" if ":tenant:" in f":{scope.scope}" else "API key"
        window = "" if scope.period == "total" else f" this {scope.period}"
        if scope.unit == "tokens":
            return BudgetExceeded(
                f"the {what}'s budget of {scope.limit} tokens{window} cannot cover this request"
                f" (up to {amount} tokens; {spent} used, {reserved} held by requests in flight)",
                retry_after_s=seconds_to_period_end(scope.period, at),
                scope=scope.scope,
            )
        return BudgetExceeded(
            f"the {what}'s budget of ${usd(scope.limit_nano):.2f}{window} cannot cover this"
            f" request (estimated ${usd(amount):.4f}; spent ${usd(spent):.4f},"
            f" ${usd(reserved):.4f} held by requests in flight)",
            retry_after_s=seconds_to_period_end(scope.period, at),
            scope=scope.scope,
        )

    async def _settle(
        self, conn: AsyncConnection, reservation: Reservation, actual: dict[str, int]
    ) -> None:
        for entry in reservation.entries:
            # A reservation already released as stale must not be subtracted twice.
            deleted = await conn.execute(
                text("DELETE FROM llm_budget_reservations WHERE id = :id AND scope = :s"),
                {"id": reservation.id, "s": entry.scope},
            )
            held = entry.amount if deleted.rowcount else 0
            await conn.execute(
                text(
                    "UPDATE llm_budget_ledger SET reserved_nano = reserved_nano - :r,"
                    " spent_nano = spent_nano + :a, updated_at = :t WHERE scope = :s AND period = :p"
                ),
                {"r": held, "a": actual[entry.unit], "t": now_ms(), "s": entry.scope,
                 "p": entry.period},
            )  # fmt: skip


def _scopes(scope: str, budget: LLMBudgetSettings) -> list[BudgetScope]:
    found = []
    if budget.limit_usd is not None:
        found.append(BudgetScope(scope, budget.period, round(budget.limit_usd * NANO_PER_USD)))
    if budget.limit_tokens is not None:
        found.append(BudgetScope(f"tokens:{scope}", budget.period, budget.limit_tokens, "tokens"))
    return found
