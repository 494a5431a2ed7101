"""What isolation this machine offers a sandboxed command, found once per process.

Two layers sit on top of the rlimits that always apply:

* the **bubblewrap jail** (:mod:`roost.tools.jail`): what makes running a tenant's command
  safe at all. Without a working one the sandbox refuses every command, unless the
  operator opts out with ``tools.allow_unjailed_commands``. "Working" is proven, not
  assumed: a trivial command is run in the real jail once, at start-up.
* a **pids cgroup** Roost may write to: a hard cap on the number of processes. This is
  what contains a fork bomb when Roost runs as root, where ``RLIMIT_NPROC`` is not
  enforced by the kernel.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from roost.tools.jail import Jail, find_jail_tools

_CGROUP_CANDIDATES = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")
# The host uid a server running as root drops commands to (nobody), unless configured.
DEFAULT_COMMAND_UID = 65534
INSTALL_HINT = (
    "install bubblewrap (`apt-get install bubblewrap`, or `make install` as root on"
    " Debian/Ubuntu) and allow unprivileged user namespaces; `roost doctor` checks it"
)


@dataclass(frozen=True, slots=True)
class IsolationReport:
    """What ``roost doctor`` and the start-up banner print, and what the sandbox uses."""

    jail: Jail | None
    pids_cgroup_root: str | None
    is_root: bool
    warnings: tuple[str, ...] = field(default=())
    jail_problem: str | None = None  # why there is no jail, when there is none

    @property
    def level(self) -> str:
        """``bubblewrap`` (namespace jail + limits) or ``none`` (commands are refused)."""
        return "bubblewrap" if self.jail else "none"

    @property
    def bwrap_path(self) -> str | None:
        return self.jail.tools.bwrap if self.jail else None

    @property
    def process_limit(self) -> str:
        if self.pids_cgroup_root:
            return "pids-cgroup"
        return "none (root ignores RLIMIT_NPROC)" if self.is_root else "rlimit"


@cache
def detect_isolation(command_uid: int = DEFAULT_COMMAND_UID) -> IsolationReport:
    """Probe the jail and a writable pids cgroup (cached: the machine does not change)."""
    warnings: list[str] = []
    is_root = os.geteuid() == 0
    jail, problem = _working_jail(is_root, command_uid)
    if jail is None:
        warnings.append(
            f"no working bubblewrap jail ({problem}): commands (run_command, run_tests,"
            f" search_text, git tools) are REFUSED. To fix: {INSTALL_HINT}"
        )
    cgroup_root = _writable_pids_cgroup()
    if cgroup_root is None and is_root:
        warnings.append(
            "running as root without a writable pids cgroup: the kernel does not enforce"
            " RLIMIT_NPROC for root, so a fork bomb is stopped only by the time limit"
        )
    return IsolationReport(jail, cgroup_root, is_root, tuple(warnings), problem)


def _working_jail(is_root: bool, command_uid: int) -> tuple[Jail | None, str | None]:
    tools, missing = find_jail_tools(is_root=is_root)
    if tools is None:
        return None, missing
    uid = command_uid if is_root else None
    if uid == 0:
        return None, "tools.command_uid may not be 0"
    jail = Jail(tools, host_uid=uid, host_gid=uid)
    # Present is not enough: user namespaces may be disabled, setpriv or mounts refused.
    with tempfile.TemporaryDirectory(prefix="roost-jail-probe-") as scratch:
        workspace = Path(scratch)
        jail.hand_over(workspace)
        try:
            probe = subprocess.run(  # noqa: S603 - fixed argv
                jail.command(["/bin/true"], workspace),
                capture_output=True,
                timeout=20,
                check=False,
                env={"PATH": "/usr/bin:/bin"},
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, f"the jail did not start: {error}"
    if probe.returncode != 0:
        detail = probe.stderr.decode(errors="replace").strip()[:300] or f"exit {probe.returncode}"
        return None, f"a jailed test command failed: {detail}"
    return jail, None


def _writable_pids_cgroup() -> str | None:
    for candidate in _CGROUP_CANDIDATES:
        base = Path(candidate)
        if not (base / "cgroup.procs").exists():
            continue
        probe = base / f"roost-probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            probe.mkdir()
        except OSError:
            continue
        try:
            if (probe / "pids.max").exists():
                return candidate
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
    return None


class ProcessCgroup:
    """One pids cgroup per command: caps the process count and finds every straggler."""

    def __init__(self, root: str, max_processes: int) -> None:
        parent = Path(root) / "roost"
        parent.mkdir(exist_ok=True)
        self.path = parent / f"run-{os.getpid()}-{secrets.token_hex(6)}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(max_processes))

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(line) for line in text.split()]

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> bool:
        """Remove the cgroup once empty; False while killed processes are still exiting."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True
