"""Usage and cost: calls, tokens and cost by day, model, agent and key, drawn as bars, and
the budgets that apply with how much of each is spent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.security.principal import Principal
from roost.server.ui.render import page
from roost.server.ui.session import signed_in
from roost.server.usage import DAY_MS, llm_service
from roost.storage import now_ms

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
GROUPS = ("day", "model", "agent", "key")


def _with_bars(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's share of the largest cost (or of the most tokens when nothing cost)."""
    metric = "cost_usd" if any(float(r.get("cost_usd") or 0) for r in rows) else "input_tokens"
    top = max((float(r.get(metric) or 0) for r in rows), default=0.0) or 1.0
    return [{**r, "bar": round(float(r.get(metric) or 0) / top * 100, 1)} for r in rows]


def _budget_share(budget: dict[str, Any]) -> float:
    for unit in ("usd", "tokens"):
        limit = budget.get(f"limit_{unit}")
        if limit:
            spent = float(budget.get(f"spent_{unit}") or 0)
            return round(min(spent / float(limit), 1.0) * 100, 1)
    return 0.0


@router.get("/ui/usage")
async def usage_page(
    request: Request,
    principal: SignedIn,
    days: Annotated[int, Query(ge=1, le=3660)] = 30,
) -> Response:
    service = llm_service(request.app)
    assert service.usage is not None
    assert service.budgets is not None
    since = now_ms() - days * DAY_MS
    groups: dict[str, Any] = {}
    totals: dict[str, Any] = {}
    for group_by in GROUPS:
        summary = await service.usage.summary(
            principal.tenant_id,
            since_ms=since,
            group_by=group_by,  # type: ignore[arg-type]
        )
        rows: list[dict[str, Any]] = list(summary["rows"])  # type: ignore[call-overload]
        groups[group_by] = _with_bars(rows)
        totals = summary
    budgets = await service.budgets.status(principal.tenant_id, principal.key_id)
    return page(
        request, "usage.html", title="Usage and cost", section="usage", days=days,
        groups=groups, totals=totals,
        budgets=[{**b, "share": _budget_share(b)} for b in budgets],
    )  # fmt: skip
