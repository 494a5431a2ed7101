"""Starting a command's process and watching it to the end: output tails, the output flood
limit, the disk quota watch, the wall-clock timeout, and killing what is left.

:mod:`roost.tools.sandbox` decides *what* runs (argv, jail, limits); this module only runs
it. The two halves are apart because a prepared jail (:mod:`roost.tools.prewarm`) starts
its process long before the command is known: :func:`spawn` then, :func:`supervise` when
the approved command is released into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.tools.isolation import ProcessCgroup

if TYPE_CHECKING:
    from roost.tools.sandbox import SandboxPolicy

_READ_CHUNK = 65536
# How often a running command's tenant is measured against its disk quota.
QUOTA_CHECK_INTERVAL_S = 0.5


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did, in the shape tools return to agents."""

    argv: tuple[str, ...]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: int
    timed_out: bool = False
    output_limit_exceeded: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    signal: str | None = None
    isolation: str = "bubblewrap"
    disk_quota_exceeded: bool = False
    # The command ran in a jail started while its approval was pending (roost.tools.prewarm).
    prepared: bool = False

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.output_limit_exceeded
            and not self.disk_quota_exceeded
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration_ms": self.duration_ms,
            "timed_out": self.timed_out,
            "output_limit_exceeded": self.output_limit_exceeded,
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "signal": self.signal,
            "isolation": self.isolation,
            "disk_quota_exceeded": self.disk_quota_exceeded,
            "prepared": self.prepared,
        }


class _Tail:
    """The last ``limit`` bytes of a stream and how many bytes it carried in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    @property
    def truncated(self) -> bool:
        return self.total > self.limit


async def spawn(
    command: list[str],
    cwd: Path,
    environment: dict[str, str],
    *,
    stdin_pipe: bool,
    pass_fds: Sequence[int] = (),
) -> asyncio.subprocess.Process:
    """Start ``command`` in its own process group (killed as one), output piped."""
    return await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=environment,
        stdin=asyncio.subprocess.PIPE if stdin_pipe else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )


async def execute(
    command: list[str],
    argv: tuple[str, ...],
    cwd: Path,
    environment: dict[str, str],
    stdin: bytes | None,
    policy: SandboxPolicy,
    cgroup: ProcessCgroup | None,
    isolation: str,
    over_quota: Callable[[], Awaitable[bool]] | None = None,
) -> CommandResult:
    """Start ``command`` and :func:`supervise` it."""
    started = time.monotonic()
    process = await spawn(command, cwd, environment, stdin_pipe=stdin is not None)
    return await supervise(
        process, argv, stdin, policy, cgroup, isolation, over_quota, started=started
    )


async def supervise(
    process: asyncio.subprocess.Process,
    argv: tuple[str, ...],
    stdin: bytes | None,
    policy: SandboxPolicy,
    cgroup: ProcessCgroup | None,
    isolation: str,
    over_quota: Callable[[], Awaitable[bool]] | None = None,
    *,
    started: float,
    prepared: bool = False,
) -> CommandResult:
    """Feed ``stdin`` (then close it), keep the output tails, enforce the limits, and report."""
    out, err = _Tail(policy.max_output_bytes), _Tail(policy.max_output_bytes)
    flooded = asyncio.Event()

    async def pump(stream: asyncio.StreamReader | None, tail: _Tail) -> None:
        assert stream is not None
        while chunk := await stream.read(_READ_CHUNK):
            tail.add(chunk)
            if not flooded.is_set() and out.total + err.total > policy.kill_after_output_bytes:
                flooded.set()
                kill(process.pid, cgroup)  # then drain what is left until the pipes close

    async def feed() -> None:
        if process.stdin is None:
            return
        if stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                process.stdin.write(stdin)
                await process.stdin.drain()
        process.stdin.close()

    async def communicate() -> None:
        await asyncio.gather(feed(), pump(process.stdout, out), pump(process.stderr, err))
        await process.wait()

    quota_hit = asyncio.Event()

    async def watch_quota() -> None:
        assert over_quota is not None
        while True:
            await asyncio.sleep(QUOTA_CHECK_INTERVAL_S)
            if await over_quota():
                quota_hit.set()
                kill(process.pid, cgroup)
                return

    work = asyncio.ensure_future(communicate())
    watcher = asyncio.ensure_future(watch_quota()) if over_quota is not None else None
    timed_out = False
    try:
        # Shielded: on timeout the readers keep draining while the group is killed.
        await asyncio.wait_for(asyncio.shield(work), timeout=policy.timeout_s)
    except TimeoutError:
        timed_out = True
    finally:
        if not work.done():
            kill(process.pid, cgroup)
            # Killed processes close their pipes; bound the wait in case one escaped.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(work), timeout=5)
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    exit_code = process.returncode
    return CommandResult(
        argv=argv,
        exit_code=exit_code,
        stdout=out.text(),
        stderr=err.text(),
        duration_ms=int((time.monotonic() - started) * 1000),
        timed_out=timed_out,
        output_limit_exceeded=flooded.is_set(),
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        signal=_signal_name(exit_code, jailed=isolation == "bubblewrap"),
        isolation=isolation,
        disk_quota_exceeded=quota_hit.is_set(),
        prepared=prepared,
    )


def _signal_name(exit_code: int | None, *, jailed: bool) -> str | None:
    """The signal that ended the command: negative codes directly, 128+N through bwrap."""
    if exit_code is None:
        return None
    number = -exit_code if exit_code < 0 else exit_code - 128 if jailed and exit_code > 128 else 0
    try:
        return signal.Signals(number).name if number else None
    except ValueError:
        return None


def kill(pid: int, cgroup: ProcessCgroup | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()


async def dispose_cgroup(cgroup: ProcessCgroup) -> None:
    """Kill what the command left behind (daemons, escaped groups) and remove its cgroup."""
    deadline = time.monotonic() + 5
    while True:
        cgroup.kill_all()
        if cgroup.remove() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.02)  # the kernel is reaping the killed processes
