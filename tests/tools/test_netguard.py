"""SSRF protection: every spelling of an internal address is refused, redirects re-checked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from roost.tools.netguard import NetworkPolicy, NetworkRefused, fetch


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.end_headers()
            return
        body = f"host={self.headers['Host']}".encode()
        if self.path.startswith("/echo"):
            seen = [
                f"{k}={self.headers[k]}" for k in ("Authorization", "Cookie") if self.headers[k]
            ]
            body += (" " + " ".join(seen)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0177.0.0.1/",  # octal
        "http://0x7f.1/",  # hex, short form
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
        "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "http://user:pw@example.com/",
    ],
)
async def test_internal_targets_are_refused(url: str) -> None:
    with pytest.raises(NetworkRefused):
        await fetch(url, NetworkPolicy(timeout_s=2))


async def test_exempt_network_is_reachable_and_the_address_is_pinned(local_server: int) -> None:
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    policy = NetworkPolicy(allowed_networks=("127.0.0.1/32",), resolver=resolver)
    result = await fetch(f"http://api.internal.test:{local_server}/x", policy)
    assert result.status == 200
    # Connected to the checked address, yet the server saw the original host name.
    assert result.content == f"host=api.internal.test:{local_server}"
    assert lookups == ["api.internal.test"]


async def test_redirect_to_an_internal_address_is_refused(local_server: int) -> None:
    policy = NetworkPolicy(allowed_networks=("127.0.0.1/32",))
    target = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(NetworkRefused, match="link-local"):
        await fetch(f"http://127.0.0.1:{local_server}/redirect?to={target}", policy)


async def test_dns_answer_with_any_private_address_is_refused() -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]

    with pytest.raises(NetworkRefused, match="private"):
        await fetch("http://rebind.test/", NetworkPolicy(resolver=rebinding))


async def test_host_allowlist() -> None:
    policy = NetworkPolicy(allowed_hosts=frozenset({"*.example.org"}))
    with pytest.raises(NetworkRefused, match="not on the allowed list"):
        await fetch("http://evil.test/", policy)


async def test_credentials_never_follow_a_redirect_to_another_origin(local_server: int) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    policy = NetworkPolicy(allowed_networks=("127.0.0.1/32",), resolver=resolver)
    secrets = {"Authorization": "Bearer sk-caller", "Cookie": "session=s3cret", "X-Trace": "t"}
    a, b = f"http://a.test:{local_server}", f"http://b.test:{local_server}"
    other = await fetch(f"{a}/redirect?to={b}/echo", policy, headers=secrets)
    assert other.status == 200 and other.redirects == [f"{b}/echo"]
    assert "sk-caller" not in other.content and "s3cret" not in other.content
    same = await fetch(f"{a}/redirect?to={a}/echo", policy, headers=secrets)
    assert (
        "Authorization=Bearer sk-caller" in same.content and "Cookie=session=s3cret" in same.content
    )
