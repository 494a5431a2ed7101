"""Network for jailed commands through Roost's egress proxy (issue 17): a jailed python3
and curl reach a host their policy grants, served by this test on this machine's own
non-loopback address; an ungranted host is refused, and so is the server's own loopback
port even when granted by name; the jail has no other way out."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from roost.tools.isolation import detect_isolation
from roost.tools.sandbox import CommandRefused, Sandbox, SandboxPolicy

ISOLATION = detect_isolation()


def this_machines_address() -> str:
    """An IPv4 address of one of this machine's own interfaces other than loopback."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for line in shown.splitlines():
        address = line.split()[3].split("/")[0]
        if not ipaddress.ip_address(address).is_loopback:
            return address
    raise AssertionError("this test needs a non-loopback IPv4 address on some interface")


@dataclass
class Origin:
    """A tiny HTTP server that counts who reached it."""

    body: bytes
    hits: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.hits.append(head.decode("latin-1").split("\r\n")[0])
        writer.write(
            b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(self.body), self.body)
        )
        await writer.drain()
        writer.close()


async def _serve(origin: Origin, host: str) -> asyncio.Server:
    server = await asyncio.start_server(origin.handle, host, 0)
    origin.port = server.sockets[0].getsockname()[1]
    return server


@pytest.fixture
async def origins() -> AsyncIterator[tuple[str, Origin, Origin]]:
    address = this_machines_address()
    granted, loopback = Origin(b"granted-ok"), Origin(b"LOOPBACK-LEAK")
    servers = [await _serve(granted, address), await _serve(loopback, "127.0.0.1")]
    yield address, granted, loopback
    for server in servers:
        server.close()
        await server.wait_closed()


def _policy(address: str, hosts: set[str]) -> SandboxPolicy:
    return SandboxPolicy(
        timeout_s=30,
        allowed_executables=frozenset({"python3", "curl"}),
        network=True,
        network_hosts=frozenset(hosts),
        # The test's origin is on a non-public address: exempt it as an operator would an
        # internal mirror. Loopback is never exempt here.
        network_exempt=(f"{address}/32",),
    )


PROBE = """
import socket, sys, urllib.request, urllib.error
def get(url):
    try:
        return urllib.request.urlopen(url, timeout=10).read().decode()
    except urllib.error.HTTPError as exc:
        return f"refused {exc.code}: {exc.read().decode().strip()}"
    except OSError as exc:
        return f"error {exc}"
for url in sys.argv[1:]:
    print(url, '->', get(url))
try:
    socket.create_connection(('%s', %d), timeout=3)
    print('DIRECT')
except OSError:
    print('no direct route')
"""


async def test_a_jailed_command_reaches_granted_hosts_only(
    origins: tuple[str, Origin, Origin], tmp_path: Path
) -> None:
    assert ISOLATION.jail is not None, "install bubblewrap (make test-services)"
    address, granted, loopback = origins
    sandbox = Sandbox(_policy(address, {address, "localhost", "127.0.0.1"}), ISOLATION)
    granted_url = f"http://{address}:{granted.port}/hello"
    urls = [
        granted_url,
        f"http://203.0.113.7:{granted.port}/",  # not granted
        f"http://127.0.0.1:{loopback.port}/",  # granted by name, but the host's loopback
        f"http://localhost:{loopback.port}/",
    ]
    probe = PROBE % (address, granted.port)
    result = await sandbox.run(["python3", "-c", probe, *urls], tmp_path, workspace_root=tmp_path)
    assert result.ok and result.isolation == "bubblewrap", result.stderr
    lines = result.stdout.splitlines()
    assert f"{granted_url} -> granted-ok" in lines
    assert any(
        "203.0.113.7" in line and "refused 403" in line and "not granted" in line for line in lines
    )
    assert any(
        f"127.0.0.1:{loopback.port}/ -> refused 403" in line and "loopback" in line
        for line in lines
    )
    assert any(f"localhost:{loopback.port}/ -> refused 403" in line for line in lines)
    assert "no direct route" in lines  # only the proxy leads out
    assert granted.hits == ["GET /hello HTTP/1.1"]
    assert loopback.hits == []

    curl = await sandbox.run(
        ["curl", "-sS", "--max-time", "10", granted_url], tmp_path, workspace_root=tmp_path
    )
    assert curl.ok and curl.stdout == "granted-ok", curl.stderr
    # https goes through CONNECT: refused for a host that is not granted.
    tunnel = await sandbox.run(
        ["curl", "-sS", "--max-time", "10", "https://example.com/"],
        tmp_path,
        workspace_root=tmp_path,
    )
    assert not tunnel.ok and "403" in tunnel.stderr


async def test_network_without_granted_hosts_is_refused(tmp_path: Path) -> None:
    sandbox = Sandbox(SandboxPolicy(network=True), ISOLATION)
    with pytest.raises(CommandRefused, match="no host is granted"):
        await sandbox.run(["true"], tmp_path, workspace_root=tmp_path)
