"""Errors in the shape each client expects.

OpenAI-compatible paths answer ``{"error": {...}}``, the Anthropic path answers
``{"type": "error", "error": {...}}``, everything else answers RFC 9457
problem+json with a stable ``type``. No stack trace ever reaches a client.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any

from roost.errors import RateLimited, RoostError

PROBLEM_TYPE_PREFIX = "urn:roost:problem:"
_OPENAI_PATHS = ("/v1/chat/", "/v1/completions", "/v1/embeddings", "/v1/models")
_ANTHROPIC_PATHS = ("/v1/messages",)

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    431: "invalid_request_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


class Dialect(Enum):
    PROBLEM = "problem"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


def dialect_for_path(path: str) -> Dialect:
    if path.startswith(_ANTHROPIC_PATHS):
        return Dialect.ANTHROPIC
    if path.startswith(_OPENAI_PATHS):
        return Dialect.OPENAI
    return Dialect.PROBLEM


def error_body(
    error: RoostError, *, path: str, request_id: str | None
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for ``error`` answered on ``path``."""
    dialect = dialect_for_path(path)
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited) and error.retry_after_s is not None:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after_s)))
        if "limit" in error.extra:
            headers["x-roost-limit"] = str(error.extra["limit"])
    if error.status == 401:
        headers["www-authenticate"] = 'Bearer realm="roost"'
    body: dict[str, Any]
    if dialect is Dialect.OPENAI:
        headers["content-type"] = "application/json"
        body = {
            "error": {
                "message": error.message,
                "type": _OPENAI_TYPES.get(error.status, "server_error"),
                "param": error.param,
                "code": error.code,
            }
        }
    elif dialect is Dialect.ANTHROPIC:
        headers["content-type"] = "application/json"
        body = {
            "type": "error",
            "error": {
                "type": _ANTHROPIC_TYPES.get(error.status, "api_error"),
                "message": error.message,
            },
        }
        if request_id:
            body["request_id"] = request_id
    else:
        headers["content-type"] = "application/problem+json"
        body = {
            "type": PROBLEM_TYPE_PREFIX + error.code,
            "title": error.title,
            "status": error.status,
            "detail": error.message,
            "instance": path,
        }
        if error.param:
            body["param"] = error.param
        if request_id:
            body["request_id"] = request_id
        body.update({k: v for k, v in error.extra.items() if k not in body})
    return error.status, headers, json.dumps(body).encode()
