"""Scheduled backups with retention, run by the server (``[backup] every``, ``keep``).

The schedule is kept by the archives themselves: a backup is due when the newest
scheduled archive is older than ``every``, so a restarted server neither backs up at
once nor forgets one that was due. An exclusive lock file in the backup directory keeps
two servers sharing it from making the same backup twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from roost.backup.catalog import list_archives, prune
from roost.backup.create import BackupOptions, create_backup
from roost.config import Settings, parse_duration
from roost.observe.logging import get_logger
from roost.platform.layout import HomeLayout

log = get_logger("roost.backup")
LABEL = "scheduled"
_RETRY_S = 300.0  # after a failed backup: soon, but not in a tight loop


def run_if_due(settings: Settings, now: float | None = None) -> float:
    """Back up and prune when due; return the seconds until the next backup is due."""
    assert settings.backup.every is not None
    every = parse_duration(settings.backup.every)
    now = time.time() if now is None else now
    directory = HomeLayout.of(settings).backups
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".schedule.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return every  # another process is backing up this directory right now
        newest = _newest_scheduled(settings)
        if newest is not None and now - newest < every:
            return newest + every - now
        created = create_backup(
            settings, BackupOptions(with_kv=settings.backup.with_kv, label=LABEL)
        )
        removed = prune(directory, LABEL, settings.backup.keep)
        log.info(
            "scheduled backup written",
            archive=created.id,
            bytes=created.path.stat().st_size,
            seconds=round(created.seconds, 2),
            pruned=[p.name for p in removed],
        )
        return every


async def backup_periodically(
    settings: Settings,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ran: asyncio.Event | None = None,
) -> None:
    """The server's loop: the work runs in a thread of its own at low CPU priority, so
    requests being served keep the cores first. ``ran`` is set after each round."""
    executor = ThreadPoolExecutor(1, "roost-backup", initializer=lower_priority)
    loop = asyncio.get_running_loop()
    try:
        await _loop(
            settings, sleep, lambda: loop.run_in_executor(executor, run_if_due, settings), ran
        )
    finally:
        executor.shutdown(wait=False)


def lower_priority(niceness: int = 10) -> None:
    """Lower the calling thread's CPU priority (Linux: per thread); best effort elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


async def _loop(
    settings: Settings,
    sleep: Callable[[float], Awaitable[None]],
    backup: Callable[[], Awaitable[float]],
    ran: asyncio.Event | None,
) -> None:
    while True:
        try:
            wait = await backup()
        except Exception:
            log.exception("scheduled backup failed; trying again later")
            wait = _RETRY_S
        if ran is not None:
            ran.set()
        await sleep(wait)


def _newest_scheduled(settings: Settings) -> float | None:
    scheduled = [
        a for a in list_archives(HomeLayout.of(settings).backups) if a.id.endswith(f"-{LABEL}")
    ]
    return max((a.modified_ms / 1000 for a in scheduled), default=None)
