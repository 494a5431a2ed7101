"""The retry table of the design: API errors 3 retries at 1s/2s/4s with jitter then fail
over; rate limits up to 3 retries honouring retry-after; permanent errors never."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from roost.config import LLMRetrySettings
from roost.llm.errors import ProviderError, ProviderRateLimited


@dataclass(slots=True)
class RetryCounts:
    """Retries spent on one deployment within one request."""

    num_errors: int = 0
    num_rate_limited: int = 0


@dataclass(frozen=True, slots=True)
class FailoverRetryPolicy:
    """How long the router keeps asking one deployment before it fails over to the next.

    Not :class:`roost.graph.retry.RetryPolicy` (which re-runs a whole graph node): this
    one counts errors and rate limits per deployment and honours ``retry-after``.
    """

    max_retries: int = 3
    backoff_s: float = 1.0
    jitter: float = 0.1
    rate_limit_retries: int = 3
    max_retry_after_s: float = 10.0
    random: Callable[[], float] = field(default=random.random, compare=False)

    @classmethod
    def from_settings(cls, settings: LLMRetrySettings) -> FailoverRetryPolicy:
        return cls(
            settings.max_retries,
            settings.backoff_s,
            settings.jitter,
            settings.rate_limit_retries,
            settings.max_retry_after_s,
        )

    def backoff(self, attempt: int) -> float:
        """Wait before retry ``attempt`` (0-based): backoff x 2^attempt, plus up to ``jitter`` share."""
        return self.backoff_s * (2**attempt) * (1 + self.jitter * self.random())

    def delay(self, error: ProviderError, counts: RetryCounts) -> float | None:
        """Seconds to wait before asking the same deployment again, or None to move on.

        Updates ``counts`` when it grants a retry.
        """
        if isinstance(error, ProviderRateLimited):
            if counts.num_rate_limited >= self.rate_limit_retries:
                return None
            wait = error.retry_after_s
            if wait is None:
                wait = self.backoff(counts.num_rate_limited)
            if wait > self.max_retry_after_s:
                return None  # another deployment beats waiting this long
            counts.num_rate_limited += 1
            return wait
        if not error.is_retryable or counts.num_errors >= self.max_retries:
            return None
        wait = self.backoff(counts.num_errors)
        counts.num_errors += 1
        return wait
