"""What isolation this machine offers a sandboxed command, found once per process.

Two optional layers sit on top of the rlimits that always apply:

* **bubblewrap** (``bwrap``): a namespace jail with a read-only system, the workspace as
  the only writable directory, a private ``/tmp``, its own PID namespace (so killing the
  jail kills every process in it) and no network unless the policy allows it.
* a **pids cgroup** Roost may write to: a hard cap on the number of processes. This is
  what contains a fork bomb when Roost runs as root, where ``RLIMIT_NPROC`` is not
  enforced by the kernel.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# System directories bound read-only into the jail; missing ones are skipped.
JAIL_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
# Only the parts of /etc that programs need; never the whole of it (shadow, keys, tokens).
JAIL_ETC_FILES = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/gitconfig",
    "/etc/mime.types",
)
JAIL_NETWORK_FILES = ("/etc/resolv.conf", "/etc/gai.conf", "/etc/host.conf")
JAIL_WORKSPACE = "/workspace"
_CGROUP_CANDIDATES = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")


@dataclass(frozen=True, slots=True)
class IsolationReport:
    """What ``roost doctor`` prints and the sandbox uses."""

    bwrap_path: str | None
    pids_cgroup_root: str | None
    is_root: bool
    warnings: tuple[str, ...] = field(default=())

    @property
    def level(self) -> str:
        """``bubblewrap`` (namespace jail + limits) or ``rlimits`` (limits only)."""
        return "bubblewrap" if self.bwrap_path else "rlimits"

    @property
    def process_limit(self) -> str:
        if self.pids_cgroup_root:
            return "pids-cgroup"
        return "none (root ignores RLIMIT_NPROC)" if self.is_root else "rlimit"


@cache
def detect_isolation() -> IsolationReport:
    """Probe bubblewrap and a writable pids cgroup (cached: the machine does not change)."""
    warnings: list[str] = []
    bwrap = _working_bwrap()
    if bwrap is None:
        warnings.append(
            "bubblewrap (bwrap) is not available: commands run with rlimits, a clean environment"
            " and a confined working directory, but WITHOUT a file-system or network jail."
            " Install it: apt-get install bubblewrap"
        )
    cgroup_root = _writable_pids_cgroup()
    is_root = os.geteuid() == 0
    if cgroup_root is None and is_root:
        warnings.append(
            "running as root without a writable pids cgroup: the kernel does not enforce"
            " RLIMIT_NPROC for root, so a fork bomb is stopped only by the time limit"
        )
    return IsolationReport(bwrap, cgroup_root, is_root, tuple(warnings))


def _working_bwrap() -> str | None:
    path = shutil.which("bwrap")
    if path is None:
        return None
    # Present is not enough: user namespaces may be disabled in this container.
    try:
        probe = subprocess.run(  # noqa: S603 - fixed argv
            [path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "--", "/bin/true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


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


def jail_arguments(
    workspace: Path,
    *,
    cwd: str = JAIL_WORKSPACE,
    network: bool,
    extra_read_only: tuple[str, ...] = (),
) -> list[str]:
    """bwrap options: read-only system, writable workspace at /workspace, private /tmp."""
    args = ["--unshare-all", "--die-with-parent", "--new-session"]
    if network:
        args.append("--share-net")
    for directory in JAIL_SYSTEM_DIRS:
        if os.path.islink(directory):
            args += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            args += ["--ro-bind", directory, directory]
    for path in (*JAIL_ETC_FILES, *(JAIL_NETWORK_FILES if network else ())):
        args += ["--ro-bind-try", path, path]
    for path in extra_read_only:
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108 - jail's own
    args += ["--bind", str(workspace), JAIL_WORKSPACE, "--chdir", cwd]
    # The jail's own root is a tmpfs; make it read-only too so only the workspace and /tmp take writes.
    args += ["--remount-ro", "/"]
    return args


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

    def join_prefix(self) -> list[str]:
        """argv prefix that moves itself into the cgroup, then execs the real command.

        The command's own argv follows as ``"$@"``, so nothing in it is interpreted by the shell.
        """
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', self.procs_file]

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
