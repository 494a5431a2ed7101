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
from roost.tools.prewarm import JailFit, PreparedJail, PreparedJails, launcher_argv
from roost.tools.supervise import (
    QUOTA_CHECK_INTERVAL_S,
    CommandResult,
    dispose_cgroup,
    execute,
    spawn,
    supervise,
)
from roost.tools.tenant_limits import TenantCommandLimits

__all__ = [
    "QUOTA_CHECK_INTERVAL_S",
    "CommandRefused",
    "CommandResult",
    "Sandbox",
    "SandboxPolicy",
]

DEFAULT_EXECUTABLES = frozenset(
    {"python3", "python", "pytest", "git", "ls", "cat", "head", "tail", "wc", "grep", "echo",
     "true", "false", "make", "node", "npm", "ruff", "mypy", "diff", "sort", "uniq", "find"}
)  # fmt: skip
DEFAULT_ENV_ALLOWLIST = frozenset({"LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables that change how every program loads: never settable by a caller.
_FORBIDDEN_ENV = re.compile(r"^(LD_|DYLD_|PYTHONSTARTUP$|PYTHONHOME$|BASH_ENV$|ENV$|GIT_CONFIG)")
_MiB = 1024 * 1024


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


class Sandbox:
    """Runs argv lists under a :class:`SandboxPolicy` in the jail, or refuses them."""

    def __init__(
        self,
        policy: SandboxPolicy,
        isolation: IsolationReport | None = None,
        limits: TenantCommandLimits | None = None,
        prepared: PreparedJails | None = None,
    ) -> None:
        self.policy = policy
        self.isolation = isolation or detect_isolation()
        self.limits = limits or TenantCommandLimits()
        # Jails started while their command's approval is pending (roost.tools.prewarm).
        self.prepared = prepared if prepared is not None else PreparedJails()

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
        ticket: str | None = None,
    ) -> CommandResult:
        """Run ``argv`` in ``cwd`` (inside ``workspace_root``) and report what happened.

        ``tenant_id`` takes one of the tenant's command slots; ``quota_root`` (default the
        workspace) is the directory whose size the tenant's disk quota caps. ``ticket``
        (the consumed approval's id): the jail :meth:`prepare` started for it, if it fits.
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
            if ticket is not None and (ready := self.prepared.take(ticket, tenant_id)) is not None:
                fit = self._fit(tenant_id, workspace_root, relative_cwd, executable, policy, env)
                if fit is not None and ready.fit.admits(fit):
                    result = await self._run_prepared(ready, command, tuple(argv), workspace_root,
                                                      policy, stdin, watch)  # fmt: skip
                    if result is not None:
                        return result
                else:
                    await ready.tear_down()  # built for something else: never used
            return await self._run_checked(
                command, tuple(argv), cwd, relative_cwd, workspace_root, policy, stdin, env, watch
            )

    async def prepare(
        self,
        argv: Sequence[str],
        cwd: Path,
        *,
        workspace_root: Path,
        ticket: str,
        policy: SandboxPolicy | None = None,
        env: Mapping[str, str] | None = None,
        tenant_id: str | None = None,
        quota_root: Path | None = None,
        lifetime_s: float | None = None,
    ) -> bool:
        """Start the jail ``argv`` would run in, with a launcher waiting in it for the
        command (:mod:`roost.tools.prewarm`); ``run(..., ticket=ticket)`` releases it.

        Nothing of ``argv`` runs here. False when no jail is prepared (no jail, a command
        with network, no room): the command then starts cold when it is run. Refusals a
        cold start would raise (not allowlisted, outside the workspace) are raised here too.
        """
        policy = policy or self.policy
        _check_argv(argv)
        self.check_can_run(policy)
        jail = self.isolation.jail
        relative_cwd = _relative_cwd(cwd, workspace_root)
        executable = self.resolve_executable(argv[0], policy)
        if jail is None or jail.python is None or not self.prepared.has_room(ticket, tenant_id):
            return False
        left = await asyncio.to_thread(self.limits.bytes_left, quota_root or workspace_root)
        if left is not None:
            policy = policy.narrowed(max_file_bytes=min(policy.max_file_bytes, left))
        fit = self._fit(tenant_id, workspace_root, relative_cwd, executable, policy, env)
        if fit is None:
            return False
        await asyncio.to_thread(jail.hand_over, workspace_root)
        cgroup = (
            ProcessCgroup(self.isolation.pids_cgroup_root, policy.max_processes)
            if self.isolation.pids_cgroup_root
            else None
        )
        read_fd, write_fd = os.pipe()
        try:
            command = jail.command(
                launcher_argv(jail.python, read_fd, ticket),
                workspace_root,
                cwd=str(Path(JAIL_WORKSPACE) / relative_cwd),
                extra_read_only=_install_prefix(executable),
                preamble=_preamble(policy, self.isolation, cgroup),
            )
            process = await spawn(command, cwd, dict(fit.environment), stdin_pipe=True,
                                  pass_fds=(read_fd,))  # fmt: skip
        except BaseException:
            os.close(write_fd)
            if cgroup is not None:
                await dispose_cgroup(cgroup)
            raise
        finally:
            os.close(read_fd)  # the launcher holds the only read end now
        ready = PreparedJail(ticket, fit, process, write_fd, cgroup)
        if not self.prepared.has_room(ticket, tenant_id):  # filled while this one started
            await ready.tear_down()
            return False
        self.prepared.add(ready, lifetime_s=lifetime_s)
        return True

    def _fit(
        self,
        tenant_id: str | None,
        workspace_root: Path,
        relative_cwd: Path,
        executable: str,
        policy: SandboxPolicy,
        env: Mapping[str, str] | None,
    ) -> JailFit | None:
        """What a jail for this command is built from; None when it cannot be prepared
        (a command with network gets an egress proxy of its own at start)."""
        if policy.network:
            return None
        environment = _environment(policy, env, home=JAIL_WORKSPACE)
        return JailFit(tenant_id, workspace_root.resolve(), relative_cwd, executable,
                       tuple(sorted(environment.items())), policy)  # fmt: skip

    async def _run_prepared(
        self,
        ready: PreparedJail,
        command: list[str],
        argv: tuple[str, ...],
        workspace_root: Path,
        policy: SandboxPolicy,
        stdin: bytes | None,
        over_quota: Callable[[], Awaitable[bool]] | None,
    ) -> CommandResult | None:
        """Release ``command`` into the prepared jail; None (jail torn down) when it could
        not take it, so the caller starts the command cold."""
        jail = self.isolation.jail
        assert jail is not None
        try:
            # Files the server wrote since the jail started must be the jail's too.
            await asyncio.to_thread(jail.hand_over, workspace_root)
            started = time.monotonic()
            if not ready.release(command):
                await ready.tear_down()
                return None
            return await supervise(ready.process, argv, stdin, policy, ready.cgroup,
                                   "bubblewrap", over_quota, started=started, prepared=True)  # fmt: skip
        except BaseException:
            await ready.tear_down()
            raise
        finally:
            if ready.cgroup is not None:
                await dispose_cgroup(ready.cgroup)

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
                return await execute(command, argv, cwd, environment, stdin, policy, cgroup,
                                     isolation, over_quota)  # fmt: skip
            finally:
                if cgroup is not None:
                    await dispose_cgroup(cgroup)
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
