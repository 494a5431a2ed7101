"""The bubblewrap jail a command runs in: how its argv is built, and what it sees.

Inside the jail a command is uid 1000 (``roost``) of a user namespace, with its own PID,
network, IPC and UTS namespaces; ``/proc`` shows only the jail's processes; ``/etc/passwd``,
``/etc/group`` and ``/etc/hosts`` are synthesized (never the host's); the system is
read-only and the workspace at ``/workspace`` is the only writable path (plus a private
``/tmp``). The network namespace has nothing but its own loopback: no host service, no
internet. A command whose policy grants hosts gets one way out: Roost's egress proxy
(:mod:`roost.tools.egress`), reached through a unix socket bound into the jail.

A user namespace made by root would map the jail's uid to host root, so root (a server
started as root) first drops to an unprivileged host uid (``setpriv``). That uid cannot
reach the workspace through Roost's 0700 home, so a private mount namespace, made while
still root, binds the workspace onto an empty, world-traversable mount point first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

# System directories bound read-only into the jail; missing ones are skipped.
JAIL_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
# Only the parts of /etc that programs need to load and run; never users, hosts or secrets.
JAIL_ETC_FILES = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/gitconfig",
    "/etc/mime.types",
)
JAIL_WORKSPACE = "/workspace"
JAIL_UID = 1000
# What the jail's /etc says: the command's own user and the two names programs expect.
_PASSWD = (
    "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
    f"roost:x:{JAIL_UID}:{JAIL_UID}:Roost sandbox:{JAIL_WORKSPACE}:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
_GROUP = f"root:x:0:\nroost:x:{JAIL_UID}:\nnogroup:x:65534:\n"
_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost\n"
# Starts the egress forwarder (it returns once listening), then runs the command.
_FORWARD_THEN_EXEC = '"$0" "$1" "$2" "$3" </dev/null >/dev/null 2>&1 && shift 3 && exec "$@"'
# Binds the workspace in the private mount namespace, then runs the rest of argv.
_BIND_THEN_EXEC = 'mount --bind -- "$0" "$1" && shift && exec "$@"'


@dataclass(frozen=True, slots=True)
class JailTools:
    """Absolute paths of the programs a jail is built with."""

    bwrap: str
    unshare: str | None = None  # root only
    setpriv: str | None = None  # root only


class Jail:
    """Builds the argv that runs one command in the jail; holds the synthesized ``/etc``."""

    def __init__(self, tools: JailTools, *, host_uid: int | None, host_gid: int | None) -> None:
        """``host_uid``: the unprivileged uid root drops to; None when not running as root."""
        self.tools = tools
        self.host_uid = host_uid
        self.host_gid = host_gid if host_gid is not None else host_uid
        self.support = Path(tempfile.mkdtemp(prefix="roost-jail-"))
        atexit.register(shutil.rmtree, self.support, ignore_errors=True)
        # Readable by the dropped uid; nothing in it is secret.
        self.support.chmod(0o755)
        # Modes set explicitly: the process umask (077, see platform.private_home) would
        # leave them unreadable to that uid.
        etc = self.support / "etc"
        etc.mkdir()
        etc.chmod(0o755)
        for name, text in (("passwd", _PASSWD), ("group", _GROUP), ("hosts", _HOSTS)):
            (etc / name).write_text(text)
            (etc / name).chmod(0o644)
        # The egress forwarder runs in the jail with the system's own python3 (under /usr).
        self.python = shutil.which("python3", path="/usr/bin:/bin")
        self.mount_point = self.support / "workspace"
        self.mount_point.mkdir()
        self.mount_point.chmod(0o755)

    @property
    def drops_root(self) -> bool:
        return self.host_uid is not None

    def command(
        self,
        argv: list[str],
        workspace: Path,
        *,
        cwd: str = JAIL_WORKSPACE,
        extra_read_only: tuple[str, ...] = (),
        egress: Path | None = None,
        preamble: str = "",
    ) -> list[str]:
        """``argv`` wrapped so that it runs in the jail with ``workspace`` at /workspace;
        with ``egress`` (an :class:`~roost.tools.egress.EgressProxy`'s directory) the
        forwarder to that proxy starts first.

        ``preamble``: shell commands of Roost's own (rlimits, joining the pids cgroup) run
        by the one shell in front of the jail before anything else starts. Folding them
        into that shell, instead of a ``prlimit`` and a second shell of their own, saves
        two program start-ups per command (each costs milliseconds on a busy machine).
        """
        source = str(self.mount_point) if self.drops_root else str(workspace)
        binds: list[str] = []
        if egress is not None:
            from roost.tools.egress import (
                FORWARDER_NAME,
                JAIL_EGRESS_DIR,
                JAIL_PROXY_PORT,
                SOCKET_NAME,
            )

            if self.python is None:
                raise RuntimeError("no system python3 for the jail's egress forwarder")
            binds = ["--ro-bind", str(egress), JAIL_EGRESS_DIR]
            argv = [
                "/bin/sh", "-c", _FORWARD_THEN_EXEC, self.python,
                f"{JAIL_EGRESS_DIR}/{FORWARDER_NAME}", f"{JAIL_EGRESS_DIR}/{SOCKET_NAME}",
                str(JAIL_PROXY_PORT), *argv,
            ]  # fmt: skip
        options = self._bwrap_options(source, cwd, extra_read_only, binds)
        jailed = [self.tools.bwrap, *options, "--"]
        first = f"{preamble} && " if preamble else ""
        if not self.drops_root:
            if not first:
                return [*jailed, *argv]
            return ["/bin/sh", "-c", first + 'exec "$@"', "roost-jail", *jailed, *argv]
        assert self.tools.unshare is not None
        assert self.tools.setpriv is not None
        assert self.host_uid is not None
        return [
            self.tools.unshare, "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", first + _BIND_THEN_EXEC, str(workspace), str(self.mount_point),
            self.tools.setpriv, f"--reuid={self.host_uid}", f"--regid={self.host_gid}",
            "--clear-groups", "--no-new-privs", "--",
            *jailed, *argv,
        ]  # fmt: skip

    def _bwrap_options(
        self, source: str, cwd: str, extra_read_only: tuple[str, ...], binds: list[str]
    ) -> list[str]:
        args = [
            "--unshare-all", "--unshare-user", "--uid", str(JAIL_UID), "--gid", str(JAIL_UID),
            "--disable-userns", "--die-with-parent", "--new-session",
        ]  # fmt: skip
        for directory in JAIL_SYSTEM_DIRS:
            if os.path.islink(directory):
                args += ["--symlink", os.readlink(directory), directory]
            elif os.path.isdir(directory):
                args += ["--ro-bind", directory, directory]
        for path in (*JAIL_ETC_FILES, *extra_read_only):
            args += ["--ro-bind-try", path, path]
        for name in ("passwd", "group", "hosts"):
            args += ["--ro-bind", str(self.support / "etc" / name), f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108 - jail's own
        args += ["--bind", source, JAIL_WORKSPACE, *binds, "--chdir", cwd]
        # The jail's root is a tmpfs; read-only too, so only the workspace and /tmp take writes.
        args += ["--remount-ro", "/"]
        return args

    def hand_over(self, workspace: Path) -> None:
        """Give the dropped uid the workspace (files the server's tools wrote are root's)."""
        if self.host_uid is None:
            return
        uid, gid = self.host_uid, self.host_gid
        assert gid is not None
        for directory, names, files in os.walk(workspace):
            for path in (directory, *(os.path.join(directory, n) for n in (*names, *files))):
                stat = os.lstat(path)
                if stat.st_uid != uid or stat.st_gid != gid:
                    os.lchown(path, uid, gid)


def find_jail_tools(*, is_root: bool) -> tuple[JailTools | None, str | None]:
    """The programs the jail needs, or None and what is missing."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bubblewrap (bwrap) is not installed"
    if not is_root:
        return JailTools(bwrap), None
    unshare = shutil.which("unshare", path="/usr/bin:/bin")
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    if unshare is None or setpriv is None:
        return None, "util-linux's unshare and setpriv are needed to drop root"
    return JailTools(bwrap, unshare, setpriv), None
