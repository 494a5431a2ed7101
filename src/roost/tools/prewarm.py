"""Jails started while a command's approval is pending, so the decision only releases it.

Starting a jailed command is a chain of program starts (``unshare``, ``sh``, ``mount``,
``setpriv``, ``bwrap``: see docs/tools.md) plus forking the server's large process; on a
busy machine that takes hundreds of milliseconds, all of it after a human said yes. So
when an approval for a command is *asked*, the sandbox builds the whole chain at once,
with a small launcher at its end instead of the command: the system ``python3`` in the
jail, blocked reading a pipe whose only writer is the server. The decision then writes
the command's argv into the pipe and the launcher ``exec``\\ s it: the command starts in
the jail that was waiting, with nothing else to start.

Fail-closed rules, each kept in one place:

* **Nothing runs without the approved call.** The launcher runs only what arrives on its
  pipe, and :meth:`roost.tools.sandbox.Sandbox.run` writes there only when the executor
  consumed the approval (its hash binds the tool and the arguments) and the tool then
  asked to run a command under that approval's ticket. The argv written is the one the
  tool builds from the approved arguments, exactly as a cold start would run it.
* **Same jail or none.** A prepared jail is used only when everything it was built from
  (tenant, workspace, working directory, executable and its install tree, environment,
  limits) equals what the command needs now; a limit may only be stricter than now
  (the file-size cap follows the disk quota). Otherwise it is torn down and the command
  starts cold.
* **Torn down** on a denial, on any outcome of the call that did not use it (approval
  expired, used, refused), after at most ``max_idle_s`` or the approval's expiry, on
  shutdown (:meth:`PreparedJails.close`), and if the server dies: the pipe's write end
  closes with the server's process, the launcher reads end-of-file and exits without
  running anything (``--die-with-parent`` takes the rest of the jail down).
* **Bounded**: at most ``max_per_tenant`` and ``max_total`` wait at once; beyond that a
  command simply starts cold when decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from roost.observe.logging import get_logger
from roost.tools.isolation import ProcessCgroup
from roost.tools.supervise import dispose_cgroup, kill

if TYPE_CHECKING:
    from roost.tools.sandbox import SandboxPolicy

log = get_logger("roost.tools")

# Runs in the jail as the command's stand-in: reads one JSON argv from the pipe (to EOF),
# then becomes the command. An empty read (the server closed the pipe or died) or anything
# malformed exits 125 without running anything.
LAUNCHER = (
    "import json, os, sys\n"
    "fd = int(sys.argv[1])\n"
    "chunks = []\n"
    "while True:\n"
    "    chunk = os.read(fd, 65536)\n"
    "    if not chunk:\n"
    "        break\n"
    "    chunks.append(chunk)\n"
    "os.close(fd)\n"
    "try:\n"
    "    argv = json.loads(b''.join(chunks))['argv']\n"
    "except Exception:\n"
    "    os._exit(125)\n"
    "if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):\n"
    "    os._exit(125)\n"
    "os.execv(argv[0], argv)\n"
)
# Larger orders (an argv near ARG_MAX) would not fit the pipe in one write: started cold.
MAX_ORDER_BYTES = 60_000
DEFAULT_MAX_IDLE_S = 600.0


def launcher_argv(python: str, fd: int, ticket: str) -> list[str]:
    """The launcher's argv; ``ticket`` (the approval id) names the process in listings."""
    return [python, "-I", "-S", "-c", LAUNCHER, str(fd), f"roost-prepared:{ticket}"]


@dataclass(frozen=True, slots=True)
class JailFit:
    """Everything a jail's chain is built from, but the command's own arguments."""

    tenant_id: str | None
    workspace_root: Path
    relative_cwd: Path
    executable: str
    environment: tuple[tuple[str, str], ...]
    policy: SandboxPolicy

    def admits(self, now: JailFit) -> bool:
        """Whether a jail built for ``self`` may run a command that needs ``now``: equal in
        everything, and the file-size cap (the disk quota left) no looser than now."""
        if self.policy.max_file_bytes > now.policy.max_file_bytes:
            return False
        same_limits = replace(self.policy, max_file_bytes=0) == replace(
            now.policy, max_file_bytes=0
        )
        return same_limits and replace(self, policy=now.policy) == now


@dataclass(eq=False)
class PreparedJail:
    """One jail waiting for its command; owned by :class:`PreparedJails`."""

    ticket: str
    fit: JailFit
    process: asyncio.subprocess.Process
    control_fd: int  # the pipe's write end; only this process holds it
    cgroup: ProcessCgroup | None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def release(self, argv: list[str]) -> bool:
        """Hand the launcher ``argv`` (absolute executable first); False when it cannot
        take it (too large, or the launcher is gone): the caller tears down."""
        order = json.dumps({"argv": argv}).encode()
        if len(order) > MAX_ORDER_BYTES or self.process.returncode is not None:
            return False
        try:
            written = os.write(self.control_fd, order)
        except OSError:
            return False
        finally:
            self._close_control()
        return written == len(order)

    async def tear_down(self) -> None:
        """Kill the jail (nothing has run in it) and reap it."""
        if self.timer is not None:
            self.timer.cancel()
        self._close_control()  # the launcher would exit on its own; the kill makes it sure
        kill(self.process.pid, self.cgroup)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.read()
        with contextlib.suppress(ProcessLookupError):
            await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.cgroup is not None:
            await dispose_cgroup(self.cgroup)

    def _close_control(self) -> None:
        if self.control_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.control_fd)
            self.control_fd = -1


class PreparedJails:
    """The jails of one process waiting for decisions, by approval id."""

    def __init__(
        self,
        *,
        max_total: int = 16,
        max_per_tenant: int = 4,
        max_idle_s: float = DEFAULT_MAX_IDLE_S,
    ) -> None:
        self.max_total = max_total
        self.max_per_tenant = max_per_tenant
        self.max_idle_s = max_idle_s
        self._jails: dict[str, PreparedJail] = {}
        self._per_tenant: Counter[str | None] = Counter()
        self._tearing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._jails)

    def __contains__(self, ticket: object) -> bool:
        return ticket in self._jails

    def pid(self, ticket: str) -> int | None:
        """The waiting jail's process id (the head of its chain), or None."""
        jail = self._jails.get(ticket)
        return None if jail is None else jail.process.pid

    def has_room(self, ticket: str, tenant_id: str | None) -> bool:
        return (
            ticket not in self._jails
            and len(self._jails) < self.max_total
            and self._per_tenant[tenant_id] < self.max_per_tenant
        )

    def add(self, jail: PreparedJail, *, lifetime_s: float | None = None) -> None:
        """Keep ``jail`` until it is taken, discarded, or its lifetime ends."""
        self._jails[jail.ticket] = jail
        self._per_tenant[jail.fit.tenant_id] += 1
        wait = self.max_idle_s if lifetime_s is None else min(self.max_idle_s, lifetime_s)
        loop = asyncio.get_running_loop()
        jail.timer = loop.call_later(max(0.0, wait), self._expire, jail.ticket)

    def take(self, ticket: str, tenant_id: str | None) -> PreparedJail | None:
        """The jail prepared under ``ticket`` for ``tenant_id``, now the caller's to release
        or tear down; another tenant's jail is never handed out (nor disturbed)."""
        jail = self._jails.get(ticket)
        if jail is None or jail.fit.tenant_id != tenant_id:
            return None
        del self._jails[ticket]
        self._per_tenant[jail.fit.tenant_id] -= 1
        if self._per_tenant[jail.fit.tenant_id] <= 0:
            del self._per_tenant[jail.fit.tenant_id]
        if jail.timer is not None:
            jail.timer.cancel()
            jail.timer = None
        return jail

    async def discard(self, ticket: str, tenant_id: str | None) -> None:
        """Tear down the jail prepared under ``ticket`` for ``tenant_id``, if any."""
        jail = self.take(ticket, tenant_id)
        if jail is not None:
            await jail.tear_down()

    def _expire(self, ticket: str) -> None:
        jail = self._jails.get(ticket)
        jail = self.take(ticket, jail.fit.tenant_id) if jail is not None else None
        if jail is None:
            return
        log.info("prepared jail expired unused", ticket=ticket)
        task = asyncio.ensure_future(jail.tear_down())
        self._tearing.add(task)
        task.add_done_callback(self._tearing.discard)

    async def close(self) -> None:
        """Tear every waiting jail down (shutdown)."""
        for ticket, jail in list(self._jails.items()):
            await self.discard(ticket, jail.fit.tenant_id)
        if self._tearing:
            await asyncio.gather(*self._tearing, return_exceptions=True)
