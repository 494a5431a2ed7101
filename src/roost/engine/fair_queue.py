"""Waiting requests in one queue per tenant, served by weighted fair share.

The next request admitted comes from the tenant that holds the fewest running slots per
unit of weight (ties: the tenant whose head arrived first), so a tenant that floods the
engine queues behind its own requests, not in front of everyone else's. With fairness
off every request waits in one first-come-first-served line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping

from roost.engine.sequence import Sequence


class FairQueue:
    def __init__(self, *, is_fair: bool = True, weights: Mapping[str, float] | None = None):
        self.is_fair = is_fair
        self.weights = dict(weights or {})
        self._queues: dict[str, deque[Sequence]] = {}
        self._size = 0

    def weight(self, tenant: str) -> float:
        return self.weights.get(tenant, 1.0)

    def _tenant_of(self, seq: Sequence) -> str:
        return seq.tenant if self.is_fair else ""

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __iter__(self) -> Iterator[Sequence]:
        for queue in self._queues.values():
            yield from queue

    def tenants(self) -> set[str]:
        """Tenants with requests waiting."""
        return set(self._queues)

    def append(self, seq: Sequence) -> None:
        """Queue ``seq`` last among its tenant's requests."""
        self._queues.setdefault(self._tenant_of(seq), deque()).append(seq)
        self._size += 1

    def appendleft(self, seq: Sequence) -> None:
        """Queue ``seq`` first among its tenant's requests (a preempted one goes back first)."""
        self._queues.setdefault(self._tenant_of(seq), deque()).appendleft(seq)
        self._size += 1

    def peek(self, running: Mapping[str, int]) -> Sequence:
        """The request to admit next, given each tenant's running count. Raises IndexError
        when nothing waits."""
        if not self._size:
            raise IndexError("no request is waiting")
        tenant = min(
            self._queues,
            key=lambda t: (running.get(t, 0) / self.weight(t), self._queues[t][0].arrival_index),
        )
        return self._queues[tenant][0]

    def remove(self, seq: Sequence) -> None:
        tenant = self._tenant_of(seq)
        queue = self._queues[tenant]
        queue.remove(seq)
        self._size -= 1
        if not queue:
            del self._queues[tenant]
