"""Running commands for tools: argv only, allowlisted executables, limits, and a jail.

Every command goes through :meth:`Sandbox.run`:

* argv is a list; nothing is ever handed to a shell, so ``;``, ``&&``, ``$()`` and
  backticks are plain characters of an argument;
* ``argv[0]`` must be on the policy's executable allowlist (a bare name looked up on the
  sandbox's fixed ``PATH``, or an exact absolute path);
* the environment is rebuilt from an allowlist, so the server's API keys never reach it;
* the working directory is the workspace (or a directory inside it);
* the bubblewrap jail (:mod:`roost.tools.jail`), or no command at all: without a working
  jail every command is refused, unless the operator set ``allow_unjailed_commands``;
* no network: the jail has its own empty network namespace; a policy that grants hosts
  gives the command one way out, Roost's egress proxy, to those hosts only
  (:mod:`roost.tools.egress`);
* per tenant, a cap on concurrent commands and a disk quota on its workspaces;
* rlimits (CPU seconds, address space, file size, open files, processes) set by the shell
  in front of the command (``ulimit`` builtins: no extra program start);
* a wall-clock timeout that kills the whole process group, the pids cgroup, and with
  bubblewrap the whole PID namespace;
* stdout and stderr keep only their last ``max_output_bytes``; a command that writes more
  than ``kill_after_output_bytes`` in total is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from roost.tools.base import ToolFailure
from roost.tools.egress import EgressGrant, EgressProxy, proxy_environment
from roost.tools.isolation import (
    INSTALL_HINT,
    IsolationReport,
    ProcessCgroup,
    detect_isolation,
)
from roost.tools.jail import JAIL_WORKSPACE
from roost.tools.tenant_limits import TenantCommandLimits

DEFAULT_EXECUTABLES = frozenset(
    {"python3", "python", "pytest", "git", "ls", "cat", "head", "tail", "wc", "grep", "echo",
     "true", "false", "make", "node", "npm", "ruff", "mypy", "diff", "sort", "uniq", "find"}
)  # fmt: skip
DEFAULT_ENV_ALLOWLIST = frozenset({"LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables that change how every program loads: never settable by a caller.
_FORBIDDEN_ENV = re.compile(r"^(LD_|DYLD_|PYTHONSTARTUP$|PYTHONHOME$|BASH_ENV$|ENV$|GIT_CONFIG)")
_READ_CHUNK = 65536
_MiB = 1024 * 1024
# How often a running command's tenant is measured against its disk quota.
QUOTA_CHECK_INTERVAL_S = 0.5


class CommandRefused(ToolFailure):
    """The command was not started: not allowlisted, malformed, or no jail to run it in."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="command_refused")


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """Limits and allowances for commands; tools derive narrower ones with :meth:`narrowed`."""

    allowed_executables: frozenset[str] = DEFAULT_EXECUTABLES
    env_allowlist: frozenset[str] = DEFAULT_ENV_ALLOWLIST
    env: Mapping[str, str] = field(default_factory=dict)
    search_path: str = "/usr/local/bin:/usr/bin:/bin"
    network: bool = False  # the command may reach the granted hosts (and only those)
    network_hosts: frozenset[str] = frozenset()  # host globs granted, through the egress proxy
    network_exempt: tuple[str, ...] = ()  # CIDRs exempt from the non-public refusal
    timeout_s: float = 120.0
    cpu_seconds: int = 120
    memory_bytes: int = 2048 * _MiB
    max_processes: int = 128
    max_file_bytes: int = 256 * _MiB
    max_open_files: int = 256
    max_output_bytes: int = 64 * 1024
    kill_after_output_bytes: int = 16 * _MiB
    # Run without the jail when there is none: an operator's explicit, logged choice.
    allow_unjailed: bool = False

    def narrowed(self, **changes: Any) -> SandboxPolicy:
        return replace(self, **changes)


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


class Sandbox:
    """Runs argv lists under a :class:`SandboxPolicy` in the jail, or refuses them."""

    def __init__(
        self,
        policy: SandboxPolicy,
        isolation: IsolationReport | None = None,
        limits: TenantCommandLimits | None = None,
    ) -> None:
        self.policy = policy
        self.isolation = isolation or detect_isolation()
        self.limits = limits or TenantCommandLimits()

    def resolve_executable(self, name: str, policy: SandboxPolicy | None = None) -> str:
        """The absolute path of an allowlisted executable; :class:`CommandRefused` otherwise."""
        policy = policy or self.policy
        if name not in policy.allowed_executables:
            allowed = ", ".join(sorted(policy.allowed_executables))
            raise CommandRefused(f"executable {name!r} is not allowed (allowed: {allowed})")
        if "/" in name:
            if not os.path.isabs(name) or not os.access(name, os.X_OK):
                raise CommandRefused(f"executable {name!r} is not an absolute, executable path")
            return name
        found = shutil.which(name, path=policy.search_path)
        if found is None:
            raise CommandRefused(f"executable {name!r} is not installed on {policy.search_path}")
        return found

    def check_can_run(self, policy: SandboxPolicy | None = None) -> None:
        """:class:`CommandRefused` unless commands may run here at all (jail or opt-out)."""
        policy = policy or self.policy
        jail = self.isolation.jail
        if jail is None and not policy.allow_unjailed:
            raise CommandRefused(
                f"commands are refused: there is no working bubblewrap jail"
                f" ({self.isolation.jail_problem}). To fix: {INSTALL_HINT}. An operator who"
                " accepts running tenants' commands unjailed sets"
                " tools.allow_unjailed_commands = true"
            )
        if policy.network:
            # Fail closed: a grant is enforced by the jail's egress proxy or not at all.
            if not policy.network_hosts:
                raise CommandRefused(
                    "this command needs the network and no host is granted: list the hosts"
                    " commands may reach in tools.command_network_hosts"
                )
            if jail is None:
                raise CommandRefused(
                    "network for commands is granted only inside the jail (its egress proxy"
                    " enforces the granted hosts); this server runs commands unjailed"
                )
            if jail.python is None:
                raise CommandRefused(
                    "network for commands needs the system's python3 (/usr/bin/python3) for"
                    " the jail's egress forwarder; install python3"
                )

    async def run(
        self,
        argv: Sequence[str],
        cwd: Path,
        *,
        workspace_root: Path,
        policy: SandboxPolicy | None = None,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        tenant_id: str | None = None,
        quota_root: Path | None = None,
    ) -> CommandResult:
        """Run ``argv`` in ``cwd`` (inside ``workspace_root``) and report what happened.

        ``tenant_id`` takes one of the tenant's command slots; ``quota_root`` (default the
        workspace) is the directory whose size the tenant's disk quota caps.
        """
        policy = policy or self.policy
        _check_argv(argv)
        self.check_can_run(policy)
        relative_cwd = _relative_cwd(cwd, workspace_root)
        executable = self.resolve_executable(argv[0], policy)
        slot = self.limits.slot(tenant_id) if tenant_id else contextlib.nullcontext()
        with slot:
            measured = quota_root or workspace_root
            left = await asyncio.to_thread(self.limits.bytes_left, measured)
            if left is not None:
                policy = policy.narrowed(max_file_bytes=min(policy.max_file_bytes, left))

            async def over_quota() -> bool:
                return await asyncio.to_thread(self.limits.is_over_quota, measured)

            watch = over_quota if left is not None else None
            command = [executable, *argv[1:]]
            return await self._run_checked(
                command, tuple(argv), cwd, relative_cwd, workspace_root, policy, stdin, env, watch
            )

    async def _run_checked(
        self,
        command: list[str],
        argv: tuple[str, ...],
        cwd: Path,
        relative_cwd: Path,
        workspace_root: Path,
        policy: SandboxPolicy,
        stdin: bytes | None,
        env: Mapping[str, str] | None,
        over_quota: Callable[[], Awaitable[bool]] | None,
    ) -> CommandResult:
        jail = self.isolation.jail
        async with contextlib.AsyncExitStack() as stack:
            egress: Path | None = None
            if jail is not None and policy.network:
                grant = EgressGrant(policy.network_hosts, policy.network_exempt)
                proxy = await stack.enter_async_context(EgressProxy(grant, parent=jail.support))
                egress = proxy.directory
                env = {**(env or {}), **proxy_environment()}
            if jail is not None:
                await asyncio.to_thread(jail.hand_over, workspace_root)
            cgroup = (
                ProcessCgroup(self.isolation.pids_cgroup_root, policy.max_processes)
                if self.isolation.pids_cgroup_root
                else None
            )
            try:
                # One shell applies the rlimits and joins the cgroup before anything else
                # of the command starts (in front of the jail, inside its mount namespace).
                preamble = _preamble(policy, self.isolation, cgroup)
                if jail is not None:
                    command = jail.command(
                        command,
                        workspace_root,
                        cwd=str(Path(JAIL_WORKSPACE) / relative_cwd),
                        extra_read_only=_install_prefix(command[0]),
                        egress=egress,
                        preamble=preamble,
                    )
                else:
                    command = ["/bin/sh", "-c", f'{preamble} && exec "$@"', "roost", *command]
                environment = _environment(
                    policy, env, home=JAIL_WORKSPACE if jail is not None else str(cwd)
                )
                isolation = "bubblewrap" if jail is not None else "unjailed"
                return await _execute(command, argv, cwd, environment, stdin, policy, cgroup,
                                      isolation, over_quota)  # fmt: skip
            finally:
                if cgroup is not None:
                    await _dispose_cgroup(cgroup)
        raise AssertionError("unreachable")  # the stack above returns or raises


def _relative_cwd(cwd: Path, workspace_root: Path) -> Path:
    real, root = cwd.resolve(), workspace_root.resolve()
    if not real.is_relative_to(root):
        raise CommandRefused("working directory is outside the workspace")
    return real.relative_to(root)


def _check_argv(argv: Sequence[str]) -> None:
    if isinstance(argv, str | bytes) or not isinstance(argv, Sequence):
        raise CommandRefused("a command is a list of arguments, never a shell string")
    if not argv:
        raise CommandRefused("empty command")
    for argument in argv:
        if not isinstance(argument, str):
            raise CommandRefused("every argument must be a string")
        if "\x00" in argument:
            raise CommandRefused("arguments may not contain NUL bytes")


def _install_prefix(executable: str) -> tuple[str, ...]:
    """For an executable outside the system dirs (pyenv, /opt), its install tree, read-only."""
    real = os.path.realpath(executable)
    if real.startswith(("/usr/", "/bin/", "/sbin/", "/lib")):
        return ()
    bin_dir = os.path.dirname(real)
    return (os.path.dirname(bin_dir),) if os.path.basename(bin_dir) == "bin" else (bin_dir,)


def _preamble(
    policy: SandboxPolicy, isolation: IsolationReport, cgroup: ProcessCgroup | None
) -> str:
    """Shell commands (builtins only: no program starts for them) that set the command's
    rlimits, soft and hard, and move the shell into the pids cgroup before it execs on.

    ``ulimit`` counts address space in KiB and file size in 512-byte blocks: both are
    rounded down, so a limit is never looser than the policy's.
    """
    limits = {
        "-t": policy.cpu_seconds,
        "-v": policy.memory_bytes // 1024,
        "-f": policy.max_file_bytes // 512,
        "-n": policy.max_open_files,
        "-c": 0,
    }
    if not isolation.is_root:
        # RLIMIT_NPROC counts every process of this user, not only the command's.
        limits["-p"] = _processes_of_this_user() + policy.max_processes
    steps = [f"ulimit {flag} {int(value)}" for flag, value in limits.items()]
    if cgroup is not None:
        steps.append(f"echo $$ > {shlex.quote(cgroup.procs_file)}")
    return " && ".join(steps)


def _processes_of_this_user() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += 1
    return count


def _environment(
    policy: SandboxPolicy, extra: Mapping[str, str] | None, *, home: str
) -> dict[str, str]:
    environment = {name: os.environ[name] for name in policy.env_allowlist if name in os.environ}
    environment.update(policy.env)
    for name, value in (extra or {}).items():
        if not _ENV_NAME.match(name) or _FORBIDDEN_ENV.match(name):
            raise CommandRefused(f"environment variable {name!r} may not be set")
        environment[name] = value
    environment["PATH"] = policy.search_path
    environment["HOME"] = home
    return environment


async def _execute(
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
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=environment,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, killed as one
    )
    out, err = _Tail(policy.max_output_bytes), _Tail(policy.max_output_bytes)
    flooded = asyncio.Event()

    async def pump(stream: asyncio.StreamReader | None, tail: _Tail) -> None:
        assert stream is not None
        while chunk := await stream.read(_READ_CHUNK):
            tail.add(chunk)
            if not flooded.is_set() and out.total + err.total > policy.kill_after_output_bytes:
                flooded.set()
                _kill(process.pid, cgroup)  # then drain what is left until the pipes close

    async def feed() -> None:
        if stdin is not None and process.stdin is not None:
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
                _kill(process.pid, cgroup)
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
            _kill(process.pid, cgroup)
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


def _kill(pid: int, cgroup: ProcessCgroup | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()


async def _dispose_cgroup(cgroup: ProcessCgroup) -> None:
    """Kill what the command left behind (daemons, escaped groups) and remove its cgroup."""
    deadline = time.monotonic() + 5
    while True:
        cgroup.kill_all()
        if cgroup.remove() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.02)  # the kernel is reaping the killed processes
