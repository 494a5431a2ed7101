"""Workers watch over each other: each heart-beats into ``run_workers``; a worker that
falls silent (or stopped, or whose process is gone from this host) has its unfinished
runs taken over by a live one within ``takeover_after_s`` plus one beat.

Taking over is claimed with a guarded UPDATE, so one live worker recovers each dead
one; recovery re-enqueues the runs and DBOS admits one runner each, so even a repeat is
harmless. A run resumes from its last checkpoint: finished nodes do not run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable

from roost.observe.logging import get_logger
from roost.storage import Database, now_ms

log = get_logger("roost.runs")
Recover = Callable[[list[str]], Awaitable[int]]


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class WorkerWatch:
    """This worker's heart-beat plus the takeover of dead peers."""

    def __init__(
        self,
        database: Database,
        executor_id: str,
        recover: Recover,
        *,
        interval_s: float = 2.0,
        takeover_after_s: float = 10.0,
    ) -> None:
        self.database = database
        self.executor_id = executor_id
        self.recover = recover
        self.interval_s = interval_s
        self.takeover_after_s = takeover_after_s
        self.host = socket.gethostname()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        now = now_ms()
        await self.database.execute(
            "INSERT INTO run_workers (executor_id, host, pid, started_at, heartbeat_at)"
            " VALUES (:e, :h, :p, :n, :n)",
            {"e": self.executor_id, "h": self.host, "p": os.getpid(), "n": now},
        )
        await self.take_over_dead()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop beating and say so: peers take this worker's unfinished runs at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # the database may be what stopped us
            await self.database.execute(
                "UPDATE run_workers SET stopped_at = :n WHERE executor_id = :e",
                {"n": now_ms(), "e": self.executor_id},
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.database.execute(
                    "UPDATE run_workers SET heartbeat_at = :n WHERE executor_id = :e",
                    {"n": now_ms(), "e": self.executor_id},
                )
                await self.take_over_dead()
            except Exception as exc:  # a database blip: try again next beat
                log.warning("worker heart-beat failed", error=str(exc))

    async def take_over_dead(self) -> list[str]:
        """Claim and recover every dead, unclaimed peer; returns their ids."""
        cutoff = now_ms() - int(self.takeover_after_s * 1000)
        rows = await self.database.fetch_all(
            "SELECT executor_id, host, pid, heartbeat_at, stopped_at FROM run_workers"
            " WHERE taken_over_by IS NULL AND executor_id <> :me",
            {"me": self.executor_id},
        )
        dead = [
            str(row["executor_id"])
            for row in rows
            if row["stopped_at"] is not None
            or int(row["heartbeat_at"]) < cutoff
            or (row["host"] == self.host and _process_gone(int(row["pid"])))
        ]
        claimed: list[str] = []
        for executor_id in dead:
            won = await self.database.execute(
                "UPDATE run_workers SET taken_over_by = :me, taken_over_at = :n"
                " WHERE executor_id = :e AND taken_over_by IS NULL",
                {"me": self.executor_id, "n": now_ms(), "e": executor_id},
            )
            if won:
                claimed.append(executor_id)
        if claimed:
            count = await self.recover(claimed)
            log.info("took over runs of dead workers", workers=claimed, runs=count)
        return claimed
