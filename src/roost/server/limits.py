"""Counts every authenticated request against its caller's limits (the kernel's
:class:`~roost.limits.service.Limiter`): requests per minute always, and a concurrency
slot for model calls, held until the response (streamed or not) has been sent."""

from __future__ import annotations

import asyncio

from roost.errors import RoostError
from roost.limits.service import current_admission
from roost.server.middleware import (
    PUBLIC_PATHS,
    ASGIApp,
    Receive,
    Scope,
    Send,
    request_state,
    send_error,
)

# Paths whose requests run a model: they hold a concurrency slot while they run.
MODEL_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/embeddings",
               "/v1/responses")  # fmt: skip


def is_model_call(path: str) -> bool:
    return path.startswith(MODEL_PATHS) and not path.endswith("/count_tokens")


class LimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = request_state(scope).get("principal")
        limiter = getattr(scope["app"].state, "limits", None) if "app" in scope else None
        if (
            scope["type"] != "http"
            or scope["path"] in PUBLIC_PATHS
            or principal is None
            or limiter is None
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        try:
            admission = await limiter.admit(
                principal.tenant_id,
                principal.key_id,
                concurrent=is_model_call(scope["path"]),
                address=client[0] if client else None,
            )
        except RoostError as exc:
            await send_error(send, scope, exc)
            return
        token = current_admission.set(admission)
        try:
            await self.app(scope, receive, send)
        finally:
            current_admission.reset(token)
            # Shielded: a cancelled request (client gone) still gives its slot back.
            await asyncio.shield(admission.release())
