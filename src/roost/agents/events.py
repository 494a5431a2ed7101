"""Live run events for SSE/WebSocket clients: tokens, tool calls, node updates, interrupts.

Nodes run on worker threads (durable runs execute on DBOS's threads), subscribers on the
server's event loop, so publishing hands each event to the subscriber's loop. A run's
recent events are kept so a client that subscribes late still sees the beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

TERMINAL = "run_end"


@dataclass(slots=True)
class _Channel:
    history: list[dict[str, Any]] = field(default_factory=list)
    subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = field(
        default_factory=list
    )


class RunEvents:
    """Publish from any thread; subscribe from an event loop."""

    def __init__(self, *, max_runs: int = 1000, max_events: int = 5000) -> None:
        self._lock = threading.Lock()
        self._channels: OrderedDict[str, _Channel] = OrderedDict()
        self.max_runs = max_runs
        self.max_events = max_events

    def publish(self, run_id: str, event: dict[str, Any]) -> None:
        event = {"run_id": run_id, **event}
        with self._lock:
            channel = self._channel(run_id)
            if len(channel.history) < self.max_events:
                channel.history.append(event)
            subscribers = list(channel.subscribers)
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # that subscriber's loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, event)

    async def subscribe(
        self, run_id: str, *, replay: bool = True
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Events of ``run_id`` (earlier ones first when ``replay``) until its ``run_end``."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            channel = self._channel(run_id)
            backlog = list(channel.history) if replay else []
            channel.subscribers.append(entry)
        try:
            for event in backlog:
                yield event
                if event["event"] == TERMINAL:
                    return
            while True:
                # The backlog and the subscription were taken under one lock: no event
                # is in both, none is missed.
                event = await queue.get()
                yield event
                if event["event"] == TERMINAL:
                    return
        finally:
            with self._lock:
                if entry in channel.subscribers:
                    channel.subscribers.remove(entry)

    def reset(self, run_id: str) -> None:
        """Forget a run's history (a resumed run starts a fresh stream of events)."""
        with self._lock:
            channel = self._channels.get(run_id)
            if channel is not None:
                channel.history.clear()

    def _channel(self, run_id: str) -> _Channel:
        channel = self._channels.get(run_id)
        if channel is None:
            channel = self._channels[run_id] = _Channel()
            while len(self._channels) > self.max_runs:
                self._channels.popitem(last=False)
        else:
            self._channels.move_to_end(run_id)
        return channel
