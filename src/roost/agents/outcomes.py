"""What a settled run teaches: its outcome, fed to whatever learns from runs.

The run service calls :func:`record_outcome` once a run settles (succeeded or failed);
today the learned router of a routed spec learns from it (success, cost, latency; see
:mod:`roost.agents.run_routing`). Learning never fails a run: errors are logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from roost.agents.run_routing import RouteChoice
from roost.agents.runtime import AgentRuntime
from roost.agents.store import RunRecord
from roost.observe.logging import get_logger

log = get_logger("roost.agents")
LEARNED_STATUSES = frozenset({"succeeded", "failed"})


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How one run ended, and what it was routed to (None when its spec has no route)."""

    tenant_id: str
    run_id: str
    agent: str
    status: str
    usage: Mapping[str, int] = field(default_factory=dict)
    route: RouteChoice | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def of(cls, record: RunRecord, values: Mapping[str, Any]) -> RunOutcome:
        route = values.get("route")
        return cls(
            record.tenant_id,
            record.id,
            record.agent,
            record.status,
            dict(record.usage or {}),
            RouteChoice.from_state(route) if isinstance(route, Mapping) else None,
        )


async def record_outcome(
    runtime: AgentRuntime, record: RunRecord, values: Mapping[str, Any]
) -> RunOutcome | None:
    """Feed a settled run's outcome to the runtime's learners; None when nothing was learned
    (still running, interrupted, cancelled)."""
    if record.status not in LEARNED_STATUSES:
        return None
    outcome = RunOutcome.of(record, values)
    if outcome.route is not None and runtime.routing is not None:
        try:
            await runtime.routing.learn(
                outcome.tenant_id, outcome.route, outcome.succeeded, outcome.usage
            )
        except Exception:  # a router that cannot learn must not fail the run's settling
            log.exception("router learning failed", run_id=outcome.run_id)
    return outcome
