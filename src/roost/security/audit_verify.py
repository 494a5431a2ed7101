"""``roost audit verify``: recompute every tenant's hash chain and name the first break."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from roost.security.audit_chain import Break, ChainCheck
from roost.storage import Database

_PAGE = 1000


@dataclass(slots=True)
class VerifyReport:
    """Per tenant: chained records checked, records from before the chain, first break."""

    checked: dict[str, int] = field(default_factory=dict)
    unchained: dict[str, int] = field(default_factory=dict)
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tenants": {
                tenant: {"checked": n, "unchained": self.unchained.get(tenant, 0)}
                for tenant, n in sorted(self.checked.items())
            },
            "breaks": [b.to_dict() for b in self.breaks],
        }


async def verify_audit(database: Database, tenant_id: str | None = None) -> VerifyReport:
    """Walk each tenant's chain (or only ``tenant_id``'s) from its first record to its head."""
    report = VerifyReport()
    for tenant in await _tenants(database, tenant_id):
        check = ChainCheck(tenant)
        after = 0
        while check.broken is None:
            rows = await database.fetch_all(
                "SELECT * FROM audit_events WHERE tenant_id = :t AND seq > :after"
                " ORDER BY seq LIMIT :n",
                {"t": tenant, "after": after, "n": _PAGE},
            )
            if not rows:
                break
            check.feed({**row, "details": _details(row)} for row in rows)
            after = int(rows[-1]["seq"])
        head = await database.fetch_one(
            "SELECT seq, hash FROM audit_heads WHERE tenant_id = :t", {"t": tenant}
        )
        check.finish(head)
        unchained = await database.fetch_one(
            "SELECT COUNT(*) AS n FROM audit_events WHERE tenant_id = :t AND seq IS NULL",
            {"t": tenant},
        )
        report.checked[tenant] = check.checked
        report.unchained[tenant] = int(unchained["n"]) if unchained else 0
        if check.broken is not None:
            report.breaks.append(check.broken)
    return report


def _details(row: dict[str, Any]) -> Any:
    try:
        return json.loads(row["details"])
    except (TypeError, ValueError):
        return row["details"]  # unparseable text cannot hash to what was written: a break


async def _tenants(database: Database, tenant_id: str | None) -> list[str]:
    if tenant_id is not None:
        return [tenant_id]
    rows = await database.fetch_all(
        "SELECT tenant_id FROM audit_heads UNION SELECT DISTINCT tenant_id FROM audit_events"
        " ORDER BY 1"
    )
    return [str(row["tenant_id"]) for row in rows]
