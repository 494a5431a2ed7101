"""Translate an HTTP failure reported by any SDK into Roost's provider errors."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time

from roost.llm.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)


def error_for_status(
    status: int,
    message: str,
    *,
    deployment: str,
    headers: Mapping[str, str] | None = None,
    secrets: tuple[str, ...] = (),
) -> ProviderError:
    """The provider error for an HTTP ``status``, with any ``secrets`` scrubbed from the text."""
    text = scrub(f"{deployment}: HTTP {status}: {message}", secrets)
    if status == 429:
        return ProviderRateLimited(
            text,
            retry_after_s=retry_after(headers or {}),
            deployment=deployment,
            status_code=status,
        )
    if status in (401, 403, 404):
        return ProviderAuthError(text, deployment=deployment, status_code=status)
    if 400 <= status < 500 and status not in (408, 409):
        return ProviderRejected(text, deployment=deployment, status_code=status)
    return ProviderUnavailable(text, deployment=deployment, status_code=status)


def unavailable(
    exc: BaseException, *, deployment: str, secrets: tuple[str, ...] = ()
) -> ProviderError:
    """A timeout or connection failure."""
    reason = scrub(f"{deployment}: {type(exc).__name__}: {exc}", secrets)
    return ProviderUnavailable(reason, deployment=deployment)


def is_programming_error(exc: BaseException) -> bool:
    """Errors that mean a bug here rather than a sick upstream: never retried or failed over."""
    return isinstance(exc, (TypeError, AttributeError, NameError, AssertionError))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every non-trivial secret replaced, so keys never reach logs or clients."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text
