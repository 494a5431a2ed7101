"""Per-deployment health: a circuit breaker, a rate-limit cool-down and a latency average.

Closed → open after ``failure_threshold`` consecutive failures; after ``reset_after_s``
one probe request may pass (half-open); its success closes the circuit, its failure
opens it again. Time comes from an injected clock so tests never sleep.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class Clock(Protocol):
    """Monotonic time and sleeping, injectable for tests."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Weight of the newest sample in the latency average.
_EWMA_ALPHA = 0.3


@dataclass(slots=True)
class DeploymentHealth:
    """The health of one deployment as this process has seen it."""

    failure_threshold: int = 5
    reset_after_s: float = 30.0
    state: CircuitState = CircuitState.CLOSED
    num_consecutive_failures: int = 0
    opened_at: float = 0.0
    is_probe_in_flight: bool = False
    cooldown_until: float = 0.0
    latency_s: float | None = None

    def can_attempt(self, now: float) -> bool:
        """Whether a request may go to this deployment now (no state change)."""
        if now < self.cooldown_until:
            return False
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN:
            return now - self.opened_at >= self.reset_after_s
        return not self.is_probe_in_flight

    def begin_attempt(self, now: float) -> bool:
        """Claim an attempt; an open circuit past its reset time lets exactly one probe through."""
        if not self.can_attempt(now):
            return False
        if self.state is CircuitState.OPEN:
            self.state = CircuitState.HALF_OPEN
        if self.state is CircuitState.HALF_OPEN:
            self.is_probe_in_flight = True
        return True

    @property
    def is_probing(self) -> bool:
        return self.state is CircuitState.HALF_OPEN

    def record_success(self, latency_s: float) -> None:
        self.state = CircuitState.CLOSED
        self.num_consecutive_failures = 0
        self.is_probe_in_flight = False
        self.latency_s = (
            latency_s
            if self.latency_s is None
            else _EWMA_ALPHA * latency_s + (1 - _EWMA_ALPHA) * self.latency_s
        )

    def record_failure(self, now: float) -> None:
        self.num_consecutive_failures += 1
        self.is_probe_in_flight = False
        if (
            self.state is CircuitState.HALF_OPEN
            or self.num_consecutive_failures >= self.failure_threshold
        ):
            self.state = CircuitState.OPEN
            self.opened_at = now

    def release(self) -> None:
        """An attempt ended without a verdict (caller went away): free the probe slot."""
        self.is_probe_in_flight = False

    def cool_down(self, until: float) -> None:
        """Skip this deployment until ``until`` (it asked us to back off)."""
        self.cooldown_until = max(self.cooldown_until, until)

    def available_at(self) -> float:
        """When this deployment may next be tried (for retry-after hints)."""
        reopen = self.opened_at + self.reset_after_s if self.state is CircuitState.OPEN else 0.0
        return max(reopen, self.cooldown_until)
