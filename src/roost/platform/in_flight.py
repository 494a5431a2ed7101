"""Which requests are using which loaded model, so a model swap can wait for them.

An adapter opens a lease scope per request (:func:`lease_scope`; the HTTP server does it
in a middleware); :meth:`InFlightRequests.enter` (called when a request is handed a chat
service) records the service on it, and every lease is given back when the scope ends,
once the response, streamed or not, has been sent. Callers outside an HTTP request (in-process agent runs) are not
tracked: a swap does not wait for them, and closing the old engine cancels what they
still have running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_LEASES: ContextVar[list[tuple[InFlightRequests, object]] | None] = ContextVar(
    "roost_inference_leases", default=None
)


class InFlightRequests:
    """Counts of HTTP requests per chat service, and a wait for one service to go idle."""

    def __init__(self) -> None:
        # Keyed by the service itself (identity), which also keeps a counted one alive.
        self._counts: dict[object, int] = {}
        self._idle: dict[object, asyncio.Event] = {}

    def enter(self, service: object) -> None:
        """Count the current HTTP request as using ``service`` until its response is sent."""
        leases = _LEASES.get()
        if leases is None:
            return
        self._counts[service] = self._counts.get(service, 0) + 1
        leases.append((self, service))

    def leave(self, service: object) -> None:
        remaining = self._counts.get(service, 0) - 1
        if remaining > 0:
            self._counts[service] = remaining
            return
        self._counts.pop(service, None)
        idle = self._idle.pop(service, None)
        if idle is not None:
            idle.set()

    def count(self, service: object) -> int:
        return self._counts.get(service, 0)

    async def wait_idle(self, service: object, timeout_s: float) -> bool:
        """Wait until no request uses ``service``; False when ``timeout_s`` ran out first."""
        if self.count(service) == 0:
            return True
        idle = self._idle.setdefault(service, asyncio.Event())
        try:
            await asyncio.wait_for(idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


@contextmanager
def lease_scope() -> Iterator[None]:
    """Leases taken inside are given back when it ends."""
    leases: list[tuple[InFlightRequests, object]] = []
    token = _LEASES.set(leases)
    try:
        yield
    finally:
        _LEASES.reset(token)
        for tracker, service in leases:
            tracker.leave(service)
