"""Credentials this process verified recently, so a busy client's requests skip the
database read (API keys) or the signature check (JWTs).

Entries are keyed by a SHA-256 of the presented credential (the secret itself is never
kept) and trusted only while three things hold:

- the deployment-wide change mark (:mod:`roost.security.auth_changes`) is the one read
  before the entry was verified: a revoked, re-roled or rotated key, or a disabled
  tenant, is verified afresh from the next request on;
- the entry is younger than ``ttl_s`` (``auth.key_cache_ttl_s``): the bound for what no
  signal reports, such as a LISTEN connection that died without a word;
- its own deadline has not passed (a key's ``expires_at``, a token's ``exp``).

Failures are never cached: a new or rotated secret works at once, and every bad attempt
still reaches the brute-force throttle.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from roost.security.auth_changes import AuthChangeFeed, Epoch

T = TypeVar("T")
# Far beyond the keys and tokens one server sees in a TTL; past it, start over.
MAX_ENTRIES = 50_000


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    epoch: Epoch
    fresh_until: float  # time.monotonic()
    valid_until_ms: int | None  # wall clock, epoch ms: the credential's own expiry


class VerifiedCache(Generic[T]):
    def __init__(self, feed: AuthChangeFeed, ttl_s: float) -> None:
        self.feed = feed
        self.ttl_s = ttl_s
        self._entries: dict[bytes, _Entry[T]] = {}
        self._epoch: Epoch | None = None

    def epoch(self) -> Epoch | None:
        """The mark to verify under, or None: do not use the cache for this request."""
        if self.ttl_s <= 0:
            return None
        epoch = self.feed.epoch()
        if epoch != self._epoch:
            self._entries.clear()  # every entry was taken under an older mark
            self._epoch = epoch
        return epoch

    def get(self, presented: str, epoch: Epoch) -> T | None:
        digest = _digest(presented)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if (
            entry.epoch != epoch
            or entry.fresh_until <= time.monotonic()
            or (entry.valid_until_ms is not None and entry.valid_until_ms <= _now_ms())
        ):
            del self._entries[digest]
            return None
        return entry.value

    def put(
        self, presented: str, value: T, epoch: Epoch, *, valid_until_ms: int | None = None
    ) -> None:
        """Remember ``value`` verified under ``epoch`` (taken before the verification), unless
        something changed meanwhile."""
        if self.ttl_s <= 0 or self.feed.epoch() != epoch:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[_digest(presented)] = _Entry(
            value, epoch, time.monotonic() + self.ttl_s, valid_until_ms
        )

    def __len__(self) -> int:
        return len(self._entries)


def _digest(presented: str) -> bytes:
    return hashlib.sha256(presented.encode()).digest()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
