"""Cancels a request's handler as soon as its client disconnects, so an abandoned
non-streaming request stops generating at once and frees its engine slot and KV blocks
(a stream already stopped when its next write failed).

Once the app has read the whole body, a watcher waits for ``http.disconnect`` on the
connection; the app's own later ``receive`` calls (Starlette's streaming responses make
them) are answered from that watcher, so two readers never race on one connection.
"""

from __future__ import annotations

import asyncio
import contextlib

from roost.server.middleware import ASGIApp, Message, Receive, Scope, Send, request_state

_DISCONNECT: Message = {"type": "http.disconnect"}


class DisconnectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read = asyncio.Event()
        gone = asyncio.Event()
        response_sent = False

        async def app_receive() -> Message:
            if body_read.is_set():
                await gone.wait()
                return _DISCONNECT
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal response_sent
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                response_sent = True
            await send(message)

        async def watch() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        handler = asyncio.ensure_future(self.app(scope, app_receive, watched_send))
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not handler.done() and not response_sent:
                request_state(scope)["client_gone"] = True
                handler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await handler
            if not handler.cancelled():
                handler.result()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if not handler.done():
                handler.cancel()
