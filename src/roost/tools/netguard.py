"""Outbound HTTP for tools without server-side request forgery.

Each hop of a fetch: parse the URL (http/https only, no credentials), resolve the host
once, refuse if *any* resolved address is not globally routable (loopback, private,
link-local including the 169.254.169.254 metadata service, CGNAT, multicast, reserved,
IPv4-mapped forms of these), then connect to that exact address with the original
``Host`` header and TLS server name. Resolving once and pinning the address closes the
DNS-rebinding window; redirects are followed by hand and every hop is checked again.
Decimal, octal and hex spellings of addresses are caught because the check runs on what
the resolver returns, not on the text.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from roost.tools.base import ToolFailure

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class NetworkRefused(ToolFailure):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="network_refused")


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Where tools may connect. The default: any public host, nothing internal."""

    allowed_hosts: frozenset[str] = frozenset()  # glob patterns; empty means any host
    allowed_networks: tuple[str, ...] = ()  # CIDRs exempt from the non-public refusal
    max_redirects: int = 5
    max_response_bytes: int = 2 * 1024 * 1024
    timeout_s: float = 20.0
    resolver: Resolver | None = field(default=None, compare=False)

    def is_exempt(self, address: IPAddress) -> bool:
        return any(address in ipaddress.ip_network(cidr) for cidr in self.allowed_networks)


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    status: int
    headers: dict[str, str]
    content: str
    truncated: bool
    redirects: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "headers": self.headers,
            "content": self.content,
            "truncated": self.truncated,
            "redirects": self.redirects,
        }


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a safe destination, or None when it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return refusal_reason(embedded)
        if address.teredo is not None:
            return "a Teredo tunnel address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives here)"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_checked(host: str, port: int, policy: NetworkPolicy) -> IPAddress:
    """The one address to connect to for ``host``; :class:`NetworkRefused` if any is unsafe."""
    if policy.allowed_hosts and not any(
        fnmatch.fnmatch(host.lower(), pattern) for pattern in policy.allowed_hosts
    ):
        raise NetworkRefused(f"host {host!r} is not on the allowed list")
    try:
        found = await (policy.resolver or system_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise NetworkRefused(f"cannot resolve {host!r}: {exc}") from exc
    if not found:
        raise NetworkRefused(f"{host!r} has no address")
    addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None and not policy.is_exempt(address):
            raise NetworkRefused(f"refusing {host!r}: it resolves to {address}, {reason}")
    return addresses[0]


def parse_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL without credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NetworkRefused(f"malformed URL {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise NetworkRefused(f"only http and https URLs are allowed, not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise NetworkRefused("URLs with embedded credentials are not allowed")
    host = parts.hostname
    if not host:
        raise NetworkRefused(f"URL {url!r} has no host")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


# Sent to one origin, never to the next: a redirect must not carry the caller's secrets.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}
)


def without_credentials(headers: dict[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    return {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}


def _origin(url: str) -> tuple[str, str, int]:
    scheme, host, port = parse_target(url)
    return scheme, host.lower(), port


async def fetch(
    url: str,
    policy: NetworkPolicy,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> FetchResult:
    """Fetch ``url`` under ``policy``, following redirects hop by hop with every check redone."""
    redirects: list[str] = []
    current = url
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=policy.timeout_s, trust_env=False
    ) as client:
        for _ in range(policy.max_redirects + 1):
            scheme, host, port = parse_target(current)
            address = await resolve_checked(host, port, policy)
            response_or_next = await _one_hop(
                client, current, scheme, host, port, address, method, headers, body, policy
            )
            if isinstance(response_or_next, str):
                redirects.append(response_or_next)
                if _origin(response_or_next) != _origin(current):
                    headers = without_credentials(headers)
                current = response_or_next
                if method not in ("GET", "HEAD"):
                    method, body = "GET", None
                continue
            status, response_headers, content, truncated = response_or_next
            return FetchResult(current, status, response_headers, content, truncated, redirects)
    raise NetworkRefused(f"more than {policy.max_redirects} redirects")


async def _one_hop(
    client: httpx.AsyncClient,
    url: str,
    scheme: str,
    host: str,
    port: int,
    address: IPAddress,
    method: str,
    headers: dict[str, str] | None,
    body: bytes | None,
    policy: NetworkPolicy,
) -> str | tuple[int, dict[str, str], str, bool]:
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    pinned = parts._replace(netloc=f"{literal}:{port}").geturl()
    default_port = 443 if scheme == "https" else 80
    request_headers = {
        **(headers or {}),
        "Host": host if port == default_port else f"{host}:{port}",
    }
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    request = client.build_request(
        method, pinned, headers=request_headers, content=body, extensions=extensions
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise ToolFailure(f"request to {host} failed: {exc}", type="network_error") from exc
    try:
        location = response.headers.get("location")
        if response.status_code in _REDIRECTS and location:
            return urljoin(url, location)
        data = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > policy.max_response_bytes:
                del data[policy.max_response_bytes :]
                truncated = True
                break
        text = bytes(data).decode(response.encoding or "utf-8", errors="replace")
        return response.status_code, dict(response.headers), text, truncated
    finally:
        await response.aclose()
