"""Spending budgets per tenant and per API key, safe under concurrency.

Admission reserves the request's worst-case cost with one conditional UPDATE per
scope (``spent + reserved + amount <= limit``) inside one transaction, so two
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
    """One limit that applies to a request: ``tenant:<id>`` or ``key:<id>`` for a period."""

    scope: str
    period: str  # "day", "month" or "total"
    limit_nano: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money held for one in-flight request."""

    id: str
    amount_nano: int
    entries: tuple[tuple[str, str], ...]  # (scope, period key) pairs held

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
        scopes = [
            BudgetScope(f"tenant:{tenant_id}", b.period, round(b.limit_usd * NANO_PER_USD))
            for b in (specific or default)
        ]
        if key_id is not None:
            scopes += [
                BudgetScope(f"key:{key_id}", b.period, round(b.limit_usd * NANO_PER_USD))
                for b in self.budgets
                if b.key == key_id
            ]
        return scopes

    async def reserve(
        self, tenant_id: str, key_id: str | None, amount_nano: int, *, at: datetime | None = None
    ) -> Reservation:
        """Hold ``amount_nano`` against every applicable budget, or raise :class:`BudgetExceeded`.

        No budgets, or a free request, hold nothing: free (local) models stay usable even
        when the money is gone.
        """
        scopes = self.scopes_for(tenant_id, key_id)
        if not scopes or amount_nano <= 0:
            return EMPTY_RESERVATION
        at = at or datetime.now(UTC)
        reservation_id = new_id("rsv")
        now = now_ms()
        entries: list[tuple[str, str]] = []
        async with self.database.transaction() as conn:
            for scope in scopes:
                key = period_key(scope.period, at)
                if not await self._hold(conn, scope, key, amount_nano, now):
                    telemetry.LLM_BUDGET_REJECTIONS.inc()
                    raise await self._exceeded(conn, scope, key, amount_nano, at)
                await conn.execute(
                    text(
                        "INSERT INTO llm_budget_reservations (id, scope, period, amount_nano, created_at)"
                        " VALUES (:id, :s, :p, :a, :t)"
                    ),
                    {"id": reservation_id, "s": scope.scope, "p": key, "a": amount_nano, "t": now},
                )
                entries.append((scope.scope, key))
        return Reservation(reservation_id, amount_nano, tuple(entries))

    async def settle(
        self, reservation: Reservation, actual_nano: int, conn: AsyncConnection | None = None
    ) -> None:
        """Replace the held amount with the actual cost (pass ``conn`` to join a transaction)."""
        if reservation.is_empty:
            return
        if conn is None:
            async with self.database.transaction() as own:
                await self._settle(own, reservation, actual_nano)
        else:
            await self._settle(conn, reservation, actual_nano)

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
            result.append(
                {
                    "scope": scope.scope,
                    "period": key,
                    "limit_usd": usd(scope.limit_nano),
                    "spent_usd": usd(spent),
                    "reserved_usd": usd(reserved),
                    "remaining_usd": usd(max(0, scope.limit_nano - spent - reserved)),
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
            {"a": amount, "t": now, "s": scope.scope, "p": key, "limit": scope.limit_nano},
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
        what = "tenant" if scope.scope.startswith("tenant:") else "API key"
        window = "" if scope.period == "total" else f" this {scope.period}"
        return BudgetExceeded(
            f"the {what}'s budget of ${usd(scope.limit_nano):.2f}{window} cannot cover this"
            f" request (estimated ${usd(amount):.4f}; spent ${usd(spent):.4f},"
            f" ${usd(reserved):.4f} held by requests in flight)",
            retry_after_s=seconds_to_period_end(scope.period, at),
            scope=scope.scope,
        )

    async def _settle(self, conn: AsyncConnection, reservation: Reservation, actual: int) -> None:
        for scope, key in reservation.entries:
            # A reservation already released as stale must not be subtracted twice.
            deleted = await conn.execute(
                text("DELETE FROM llm_budget_reservations WHERE id = :id AND scope = :s"),
                {"id": reservation.id, "s": scope},
            )
            held = reservation.amount_nano if deleted.rowcount else 0
            await conn.execute(
                text(
                    "UPDATE llm_budget_ledger SET reserved_nano = reserved_nano - :r,"
                    " spent_nano = spent_nano + :a, updated_at = :t WHERE scope = :s AND period = :p"
                ),
                {"r": held, "a": actual, "t": now_ms(), "s": scope, "p": key},
            )
