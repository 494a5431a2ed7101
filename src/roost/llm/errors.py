"""Errors of model calls, one vocabulary for every provider.

Providers translate their SDK's exceptions into these, so that the router decides
what to retry, what to fail over and what to give up on without knowing any SDK.
"""

from __future__ import annotations

from typing import Any, ClassVar

from roost.errors import RateLimited, RoostError


class ProviderError(RoostError):
    """A model call failed at the provider. ``deployment`` is the ``provider:model`` id."""

    code: ClassVar[str] = "upstream_error"
    status: ClassVar[int] = 502
    title: ClassVar[str] = "Upstream model error"
    # Whether the same deployment may be asked again, and whether another may be tried.
    is_retryable: ClassVar[bool] = True
    is_failover: ClassVar[bool] = True

    def __init__(
        self, message: str, *, deployment: str = "", status_code: int | None = None, **extra: Any
    ) -> None:
        super().__init__(message, **extra)
        self.deployment = deployment
        self.status_code = status_code


class ProviderUnavailable(ProviderError):
    """5xx, overload, timeout or a broken connection: worth retrying, then failing over."""

    code = "upstream_unavailable"


class ProviderRateLimited(ProviderError, RateLimited):
    """429 from the provider; ``retry_after_s`` is what it asked us to wait, when it said."""

    code = "upstream_rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after_s: float | None = None, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.retry_after_s = retry_after_s


class ProviderAuthError(ProviderError):
    """401/403/404: this deployment is misconfigured; another one may still work."""

    code = "upstream_auth_error"
    is_retryable = False


class ProviderRejected(ProviderError):
    """400/413/422: the request itself is wrong, so every deployment would refuse it."""

    code = "upstream_rejected"
    status = 400
    is_retryable = False
    is_failover = False


class StreamInterrupted(ProviderError):
    """The stream broke after tokens reached the caller; it cannot be retried transparently."""

    code = "stream_interrupted"
    is_retryable = False
    is_failover = False


class BudgetExceeded(RateLimited):
    """The tenant's or key's spending budget cannot cover this request (HTTP 429)."""

    code = "budget_exceeded"
    status = 429
    title = "Budget exceeded"


class UnknownModel(RoostError):
    """The request named a model group or ``provider:model`` id that is not configured."""

    code = "model_not_found"
    status = 404
    title = "Model not found"
