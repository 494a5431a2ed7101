"""Where bucket levels and leases live: one protocol, three backends (Redis, SQLite,
PostgreSQL). Every backend decides atomically, so any number of server processes on one
store enforce one limit between them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from roost.limits.buckets import Bucket, Lease, Mode, Verdict


class LimitStore(Protocol):
    """Atomic check-and-debit of buckets plus an optional concurrency lease.

    Raises :class:`roost.errors.StorageUnavailable` when the store cannot be reached;
    callers fail closed on it.
    """

    backend: str

    async def acquire(
        self, buckets: Sequence[Bucket], leases: Sequence[Lease] = (), mode: Mode = Mode.TAKE
    ) -> Verdict:
        """Refill every bucket, decide (:func:`roost.limits.buckets.decide`) and, unless
        refused or only checking, debit every bucket and take every lease, all at once."""
        ...

    async def release(self, leases: Sequence[tuple[str, str]]) -> None:
        """Give leases back, as (key, lease id) pairs, in one round trip (missing or
        expired ones are ignored)."""
        ...

    async def finish(self, buckets: Sequence[Bucket], leases: Sequence[tuple[str, str]]) -> None:
        """The end of a request in one round trip: debit ``buckets`` whatever their levels
        (``Mode.FORCE``: token corrections) and give ``leases`` back."""
        ...

    async def reset(self, prefix: str) -> int:
        """Forget every bucket and lease whose key starts with ``prefix``; return how many."""
        ...

    async def close(self) -> None: ...
