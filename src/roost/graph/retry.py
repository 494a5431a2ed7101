"""Per-node retry policy with the platform's presets, and the clock retries wait on.

The presets follow the failure table of the design: LLM calls retry 3 times at
1s/2s/4s, tools twice at a linear 0.5s, checkpoint writes 5 times exponentially
before the run fails loudly, memory queries twice at a fixed 100 ms.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from roost.errors import RateLimited, RequestTimeout, RoostError

# Programming errors: retrying cannot help, so the default policy fails fast.
_NEVER_RETRIED: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    ArithmeticError,
    ImportError,
    LookupError,
    NameError,
    SyntaxError,
    RuntimeError,
    ReferenceError,
    StopIteration,
    StopAsyncIteration,
    NotImplementedError,
)


def default_retry_on(exc: BaseException) -> bool:
    """Retry transient failures (I/O, timeouts, rate limits, 5xx), not bugs or bad requests."""
    if isinstance(exc, (RateLimited, RequestTimeout)):
        return True
    if isinstance(exc, RoostError):
        return exc.status >= 500
    return not isinstance(exc, _NEVER_RETRIED)


class Clock(Protocol):
    """Where retries wait; tests inject a fake one instead of sleeping."""

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to re-run a failing node.

    ``max_attempts`` counts the first try. The n-th retry waits
    ``min(initial_interval * backoff_factor**(n-1), max_interval)`` seconds, scaled by a
    random factor in [0.5, 1.5) when ``jitter`` is on. A :class:`~roost.errors.RateLimited`
    error with ``retry_after_s`` waits at least that long.
    """

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    jitter: bool = True
    retry_on: (
        type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
    ) = default_retry_on

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.initial_interval < 0 or self.max_interval < 0 or self.backoff_factor <= 0:
            raise ValueError("RetryPolicy intervals must be >= 0 and backoff_factor > 0")

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether ``exc`` raised on try number ``attempt`` (1-based) earns another try."""
        if attempt >= self.max_attempts:
            return False
        check = self.retry_on
        if isinstance(check, (type, tuple)):
            return isinstance(exc, check)
        return bool(check(exc))

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        base = min(self.initial_interval * self.backoff_factor ** (attempt - 1), self.max_interval)
        if self.jitter:
            base *= 0.5 + random.random()
        retry_after = getattr(exc, "retry_after_s", None)
        if isinstance(retry_after, (int, float)):
            base = max(base, float(retry_after))
        return base

    @classmethod
    def llm(cls) -> RetryPolicy:
        """LLM API errors: 3 retries waiting 1s, 2s, 4s."""
        return cls(max_attempts=4, initial_interval=1.0, backoff_factor=2.0, jitter=False)

    @classmethod
    def tool(cls) -> RetryPolicy:
        """Tool timeouts and errors: 2 retries, a linear 0.5s apart."""
        return cls(max_attempts=3, initial_interval=0.5, backoff_factor=1.0, jitter=False)

    @classmethod
    def checkpoint_write(cls) -> RetryPolicy:
        """Checkpoint writes: 5 retries, exponential from 0.1s; then the run fails loudly."""
        return cls(max_attempts=6, initial_interval=0.1, backoff_factor=2.0, jitter=False)

    @classmethod
    def memory_query(cls) -> RetryPolicy:
        """Memory queries: 2 retries at a fixed 100 ms."""
        return cls(max_attempts=3, initial_interval=0.1, backoff_factor=1.0, jitter=False)
