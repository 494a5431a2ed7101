"""Run events (tokens, node updates, tool calls, interrupts, the end) as rows every process
can read.

The process executing a run publishes; any process a client is connected to streams.
Publishing is synchronous and cheap (nodes call it for every token): events are
buffered and written in one transaction a few milliseconds later, then subscribers are
signalled (in this process directly, in others through the deployment's transport).
A subscriber reads rows after the last one it saw, so it can join late, reconnect, or
ask after a restart and still get every event up to the run's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import text

from roost.observe.logging import get_logger
from roost.runs.signals import LocalSignals, Transport
from roost.storage import Database, now_ms

TERMINAL = "run_end"
# With a transport that pushes signals, a subscriber re-reads the table this often anyway,
# in case a signal was lost (its connection dropped): latency then, never a lost event.
SAFETY_POLL_S = 5.0
log = get_logger("roost.runs")
IdleCheck = Callable[[], Awaitable[dict[str, Any] | None]]


class RunEventLog:
    """Publish from the executing process; subscribe from any."""

    def __init__(
        self,
        database: Database,
        transport: Transport,
        *,
        poll_s: float = 0.25,
        flush_after_s: float = 0.02,
    ) -> None:
        self.database = database
        self.transport = transport
        self.signals = LocalSignals()
        # Hundreds of streaming clients each re-reading the table four times a second cost
        # more than the runs they watch; with pushed signals that is only a safety net.
        self.poll_s = max(poll_s, SAFETY_POLL_S) if transport.pushes else poll_s
        self.flush_after_s = flush_after_s
        self._tenants: dict[str, str] = {}
        self._buffer: list[tuple[str, str, str, int]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()

    async def start(self) -> None:
        self._write_lock = asyncio.Lock()
        await self.transport.start(self.signals)

    async def close(self) -> None:
        await self.flush()
        await self.transport.close()

    # -- publishing ---------------------------------------------------------------------
    def bind(self, run_id: str, tenant_id: str) -> None:
        """Name the tenant of a run this process executes (events carry it)."""
        self._tenants[run_id] = tenant_id

    def unbind(self, run_id: str) -> None:
        self._tenants.pop(run_id, None)

    def publish(self, run_id: str, event: dict[str, Any], *, tenant_id: str | None = None) -> None:
        """Queue ``event`` for ``run_id``; it is written within ``flush_after_s``."""
        tenant = tenant_id or self._tenants.get(run_id, "")
        body = json.dumps({"run_id": run_id, **event}, default=str)
        self._buffer.append((tenant, run_id, body, now_ms()))
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.flush_after_s, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        task = asyncio.ensure_future(self.flush())
        self._flushing = task
        task.add_done_callback(_log_failure)

    async def flush(self) -> None:
        """Write what is buffered, then signal its subscribers."""
        async with self._write_lock:
            batch, self._buffer = self._buffer, []
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            if not batch:
                return
            rows = [{"t": t, "r": r, "e": e, "c": c} for t, r, e, c in batch]
            async with self.database.transaction() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO run_events (tenant_id, run_id, event, created_at)"
                        " VALUES (:t, :r, :e, :c)"
                    ),
                    rows,
                )
            run_ids = {r for _, r, _, _ in batch}
            self.signals.wake(run_ids)
            try:
                await self.transport.send(run_ids)
            except Exception as exc:  # subscribers elsewhere fall back to polling
                log.warning("run event signal failed", error=str(exc))

    async def clear(self, run_id: str) -> None:
        """Forget a run's events (a resumed run starts a fresh stream)."""
        await self.flush()
        await self.database.execute("DELETE FROM run_events WHERE run_id = :r", {"r": run_id})

    # -- reading ------------------------------------------------------------------------
    async def read(self, run_id: str, after: int = 0, limit: int = 1000) -> list[tuple[int, dict]]:
        rows = await self.database.fetch_all(
            "SELECT id, event FROM run_events WHERE run_id = :r AND id > :a ORDER BY id LIMIT :n",
            {"r": run_id, "a": after, "n": limit},
        )
        return [(int(row["id"]), json.loads(row["event"])) for row in rows]

    async def subscribe(
        self,
        run_id: str,
        *,
        after: int = 0,
        on_idle: IdleCheck | None = None,
        idle_check_s: float = 2.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Events of ``run_id`` after row ``after``, until its ``run_end``.

        ``on_idle`` is asked, when nothing arrived for ``idle_check_s``, whether the run
        ended without its end event reaching the table (its worker died at the last
        step); an event it returns ends the stream.
        """
        waiter = self.signals.register(run_id)
        last = after
        idle_s = 0.0
        try:
            while True:
                waiter.clear()
                rows = await self.read(run_id, last)
                for row_id, event in rows:
                    last = row_id
                    yield event
                    if event.get("event") == TERMINAL:
                        return
                if rows:
                    idle_s = 0.0
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await waiter.wait()
                        idle_s = 0.0
                        continue
                idle_s += self.poll_s
                if on_idle is not None and idle_s >= idle_check_s:
                    idle_s = 0.0
                    ended = await on_idle()
                    if ended is not None:
                        # One last read: the end may have been written meanwhile.
                        for row_id, event in await self.read(run_id, last):
                            last = row_id
                            yield event
                            if event.get("event") == TERMINAL:
                                return
                        yield ended
                        return
        finally:
            self.signals.unregister(run_id, waiter)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("writing run events failed", error=str(task.exception()))
