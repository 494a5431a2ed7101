"""Token buckets and concurrency leases as plain data, and the one decision every store
makes with them (:func:`decide`), so the SQL stores and the Redis script agree.

A bucket holds up to ``capacity`` tokens and refills at ``capacity / period_s`` per
second; a request that costs ``cost`` passes when every bucket it touches holds at least
that much, and then all of them are debited at once (no bucket is debited for a request
another bucket refused). A bucket with ``debit`` off is only checked: the login throttle
rides along with a request's admission that way, at no extra round trip. A lease counts one request in flight against ``limit``; it
expires on its own, so a crashed process cannot hold a slot for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Mode(Enum):
    """``TAKE`` debits when everything passes; ``CHECK`` only answers; ``FORCE`` debits
    whatever the levels (settling actual tokens, counting failed logins) and always passes."""

    TAKE = "take"
    CHECK = "check"
    FORCE = "force"


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str  # where the store keeps it, e.g. "rpm:key:3fa9c1d2e4b5"
    capacity: float
    period_s: float
    cost: float
    name: str  # the limit a refusal names, e.g. "requests_per_minute of API key 3fa9c1d2e4b5"
    debit: bool = True  # False: checked (level >= cost) but left as it is

    @property
    def per_second(self) -> float:
        return self.capacity / self.period_s


@dataclass(frozen=True, slots=True)
class Lease:
    key: str  # the scope counted, e.g. "conc:tenant:default"
    limit: int
    lease_id: str
    ttl_s: float
    name: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the request passed; if not, which limit refused it and when to retry."""

    allowed: bool
    limit: str | None = None
    retry_after_s: float | None = None


ALLOWED = Verdict(True)
# A concurrency slot frees when some request ends: no better hint than "soon".
CONCURRENCY_RETRY_S = 1.0


def refill(level: float | None, updated_s: float | None, now_s: float, bucket: Bucket) -> float:
    """The bucket's level at ``now_s``; a bucket never seen (or expired) is full."""
    if level is None or updated_s is None:
        return bucket.capacity
    return min(bucket.capacity, level + max(0.0, now_s - updated_s) * bucket.per_second)


def decide(
    buckets: Sequence[Bucket],
    levels: Sequence[float],
    leases: Sequence[Lease],
    num_leases: Sequence[int],
    mode: Mode,
) -> Verdict:
    """The verdict for refilled ``levels`` (one per bucket) and the live leases counted in
    each lease's scope (``num_leases``, one per lease)."""
    if mode is Mode.FORCE:
        return ALLOWED
    wait = 0.0
    refused: str | None = None
    for bucket, level in zip(buckets, levels, strict=True):
        if level < bucket.cost:
            needed = (bucket.cost - level) / bucket.per_second
            if refused is None or needed > wait:
                refused, wait = bucket.name, needed
    if refused is not None:
        return Verdict(False, refused, wait)
    for lease, count in zip(leases, num_leases, strict=True):
        if count >= lease.limit:
            return Verdict(False, lease.name, CONCURRENCY_RETRY_S)
    return ALLOWED


def debited(bucket: Bucket, level: float) -> float:
    """The level after paying ``bucket.cost`` (a negative cost refunds, up to capacity)."""
    return min(bucket.capacity, level - bucket.cost)
