"""Errors that Roost raises on purpose.

Every error carries a stable machine-readable ``code`` (used as the problem+json
``type`` suffix and in the OpenAI/Anthropic error bodies), an HTTP status, and a
message written for the person who will read it. The server turns these into
each API's own error shape; nothing else leaks to clients.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RoostError(Exception):
    """Base class: an error with a stable code, an HTTP status and a clear message."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, *, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.extra = extra


class InvalidRequest(RoostError):
    code = "invalid_request"
    status = 400
    title = "Invalid request"


class Unauthorized(RoostError):
    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(RoostError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(RoostError):
    code = "not_found"
    status = 404
    title = "Not found"


class MethodNotAllowed(RoostError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class Conflict(RoostError):
    code = "conflict"
    status = 409
    title = "Conflict"


class PayloadTooLarge(RoostError):
    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class HeadersTooLarge(RoostError):
    code = "headers_too_large"
    status = 431
    title = "Request header fields too large"


class RateLimited(RoostError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after_s: float | None = None, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.retry_after_s = retry_after_s


class Overloaded(RoostError):
    code = "overloaded"
    status = 503
    title = "Overloaded"


class ModelUnavailable(RoostError):
    """A model cannot be fetched (no network, unknown repository); the message names it."""

    code = "model_unavailable"
    status = 503
    title = "Model unavailable"


class RequestTimeout(RoostError):
    code = "timeout"
    status = 504
    title = "Request timed out"


class ConfigError(RoostError):
    """The configuration is invalid; ``problems`` lists every (key, reason) found."""

    code = "config_invalid"
    status = 500
    title = "Invalid configuration"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {key}: {reason}" for key, reason in problems)
        super().__init__(f"invalid configuration:\n{lines}")
        self.problems = problems


class StorageUnavailable(RoostError):
    """The database could not be reached; the message names the URL with its password redacted."""

    code = "storage_unavailable"
    status = 503
    title = "Storage unavailable"
