"""The egress proxy of jailed commands: their only way to the network, limited to the
hosts their policy grants.

A jailed command has a network namespace of its own with nothing but loopback. When its
policy grants hosts, Roost starts one proxy for that command, listening on a unix socket
in a directory of its own that is bound into the jail at ``/run/roost-egress``; inside,
a tiny forwarder (egress_forward.py, run with the system's python3) listens on the jail's
127.0.0.1:3128 and carries each connection to that socket, and the command's environment
names it as ``HTTP(S)_PROXY``. git, pip, curl and Python's urllib all honour that.

The proxy speaks HTTP ``CONNECT`` (https, and anything tunnelled) and plain-HTTP requests
in absolute form. For each it checks the host against the granted patterns, resolves it
once and refuses unless every address is public (loopback, private, link-local and the
metadata service are refused, exactly as for ``http_fetch``: :mod:`roost.tools.netguard`;
CIDRs an operator exempts stay reachable), then connects to that pinned address. So a
command reaches the hosts it was granted and nothing else: not the server's own port on
the host's loopback, not the LAN, not any other host.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from roost.observe.logging import get_logger
from roost.tools.netguard import NetworkPolicy, NetworkRefused, Resolver, resolve_checked

log = get_logger("roost.tools.egress")

JAIL_EGRESS_DIR = "/run/roost-egress"
JAIL_PROXY_PORT = 3128
SOCKET_NAME = "proxy.sock"
FORWARDER_NAME = "forward.py"
_FORWARDER = Path(__file__).with_name("egress_forward.py")
_MAX_HEAD = 16 * 1024
_HEAD_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class EgressGrant:
    """Where one command may connect: host patterns (globs), and CIDRs exempt from the
    refusal of non-public addresses (an operator's internal mirror, say)."""

    hosts: frozenset[str]
    exempt_networks: tuple[str, ...] = ()
    timeout_s: float = 20.0
    resolver: Resolver | None = field(default=None, compare=False)  # None: the system's

    def network_policy(self) -> NetworkPolicy:
        return NetworkPolicy(
            allowed_hosts=frozenset(h.lower() for h in self.hosts),
            allowed_networks=self.exempt_networks,
            timeout_s=self.timeout_s,
            resolver=self.resolver,
        )


class EgressProxy:
    """One command's proxy: a unix socket in a directory of its own, open while it runs."""

    def __init__(self, grant: EgressGrant, *, parent: Path) -> None:
        self.grant = grant
        self.policy = grant.network_policy()
        self.directory = Path(tempfile.mkdtemp(prefix="egress-", dir=parent))
        # The jail's uid (a dropped, unprivileged one under a root server) must reach it.
        self.directory.chmod(0o755)
        forwarder = self.directory / FORWARDER_NAME
        shutil.copyfile(_FORWARDER, forwarder)
        forwarder.chmod(0o644)
        self.socket_path = self.directory / SOCKET_NAME
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.decisions: list[tuple[str, int, str | None]] = []  # host, port, refusal

    async def __aenter__(self) -> EgressProxy:
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.socket_path), limit=_MAX_HEAD
        )
        self.socket_path.chmod(0o777)  # connecting to a unix socket needs write permission
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        # The command has ended: whatever it left open is cut (before waiting for the
        # server, which on newer Pythons waits for its connections).
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened: list[asyncio.StreamWriter] = [writer]
        try:
            await self._proxy(reader, writer, opened)
        finally:
            for stream in opened:  # both ends, also when the command's end cancels it
                stream.close()
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await stream.wait_closed()

    async def _proxy(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        opened: list[asyncio.StreamWriter],
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            await _answer(writer, 400, "a request head the proxy could read")
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await _answer(writer, 400, "a request line of three parts")
            return
        method, target, version = parts
        try:
            host, port, first_line = _destination(method, target, version)
        except ValueError as exc:
            await _answer(writer, 400, str(exc))
            return
        refusal = _refused_before_lookup(host, self.grant.hosts)
        address = None
        if refusal is None:
            try:
                address = await resolve_checked(host, port, self.policy)
            except NetworkRefused as exc:
                refusal = exc.message
        self.decisions.append((host, port, refusal))
        if refusal is not None or address is None:
            log.warning("egress refused", host=host, port=port, reason=refusal)
            await _answer(writer, 403, refusal or "refused")
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(str(address), port), self.policy.timeout_s
            )
        except (OSError, TimeoutError) as exc:
            await _answer(writer, 502, f"cannot reach {host}:{port}: {exc}")
            return
        opened.append(up_writer)
        log.info("egress allowed", host=host, port=port, address=str(address))
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            # Origin form to the origin; the proxy's own headers stay here, one request only.
            kept = [
                line
                for line in lines[1:]
                if line and not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))
            ]
            up_writer.write("\r\n".join([first_line, *kept, "Connection: close", "", ""]).encode())
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


def _destination(method: str, target: str, version: str) -> tuple[str, int, str]:
    """(host, port, the request line to send on) of a proxy request."""
    if not version.startswith("HTTP/1."):
        raise ValueError("HTTP/1.x only")
    if method == "CONNECT":
        parsed = urlsplit(f"//{target}")
        if not parsed.hostname or parsed.port is None:
            raise ValueError("CONNECT needs host:port")
        return parsed.hostname, parsed.port, ""
    parsed = urlsplit(target)
    if parsed.scheme != "http" or not parsed.hostname:
        raise ValueError("plain requests need an absolute http:// URL (use CONNECT for https)")
    if parsed.username is not None or parsed.password is not None:
        raise ValueError("URLs with embedded credentials are not allowed")
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    return parsed.hostname, parsed.port or 80, f"{method} {path} {version}"


def _refused_before_lookup(host: str, granted: frozenset[str]) -> str | None:
    """Hosts outside the grant are refused without even resolving them."""
    if not any(fnmatch.fnmatch(host.lower(), pattern.lower()) for pattern in granted):
        return f"host {host!r} is not granted to this command"
    return None


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    phrase = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    body = f"roost egress proxy: {reason}\n".encode()
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            if sink.can_write_eof():
                sink.write_eof()
            else:
                sink.close()


def proxy_environment() -> dict[str, str]:
    """What tells programs in the jail to go through the forwarder."""
    url = f"http://127.0.0.1:{JAIL_PROXY_PORT}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
    return {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": ""}
