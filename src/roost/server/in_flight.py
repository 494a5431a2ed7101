"""Gives back, when an HTTP response is complete, every model lease its request took
(:mod:`roost.platform.in_flight`), so a model swap waits for streamed responses too."""

from __future__ import annotations

from roost.platform.in_flight import lease_scope
from roost.server.middleware import ASGIApp, Receive, Scope, Send


class InFlightMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with lease_scope():
            await self.app(scope, receive, send)
