"""This machine only: a test that tries to reach another host fails instead of calling it
(loopback, and the addresses of this machine's own interfaces, are allowed).

Real provider endpoints, model hubs and package indexes must never be contacted from
the suite; every server a test talks to (PostgreSQL, Redis, mock upstreams, Roost) runs
on this machine.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest


class RemoteCallForbidden(RuntimeError):
    """A test tried to reach a host that is not loopback."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_OWN_ADDRESSES: dict[str, bool] = {}


def is_this_machine(host: str) -> bool:
    """A numeric address held by one of this machine's own interfaces (e.g. its eth0
    address): connecting there stays on this machine. Binding to an address succeeds only
    when it is local, so that is the check (cached)."""
    address = host.split("%")[0]
    if address not in _OWN_ADDRESSES:
        try:
            family = (
                socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
            )
        except ValueError:
            return False
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, 0))
                _OWN_ADDRESSES[address] = True
            except OSError:
                _OWN_ADDRESSES[address] = False
    return _OWN_ADDRESSES[address]


def is_numeric(host: str) -> bool:
    """An address written as numbers (``10.0.0.1``, ``::1``, ``2130706433``): looking it
    up asks no name server, and code under test may check it before refusing to connect."""
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        try:
            socket.inet_aton(host)
        except OSError:
            return False
    return True


def forbid_remote_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch socket connects and name lookups to refuse every host but loopback.

    Connecting anywhere else fails; so does resolving any name but ``localhost``."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        host = str(address[0])
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not (
            is_loopback(host) or is_this_machine(host)
        ):
            raise RemoteCallForbidden(f"tests may not connect to {address[0]!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not (is_loopback(str(name)) or is_numeric(str(name))):
            raise RemoteCallForbidden(f"tests may not resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
