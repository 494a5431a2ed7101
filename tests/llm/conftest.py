"""LLM-layer fixtures: a loopback upstream speaking three wire formats, a real Roost
server with the bundled model, and a guard that fails any test that tries to open a
connection beyond this machine."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from roost.config import LLMProviderSettings, load_settings
from roost.engine import Engine, EngineConfig
from roost.llm.providers import ProviderRegistry
from roost.server.app import create_app
from tests.llm.upstream import MockUpstream
from tests.support.uvicorn_thread import ThreadedServer

API_KEY = "sk-test-secret-key-0123456789"


class RemoteCallForbidden(RuntimeError):
    """A test tried to reach a host that is not loopback."""


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def forbid_remote_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only loopback: real provider endpoints must never be called from tests."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            raise RemoteCallForbidden(f"tests may not connect to {address[0]!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(
            host.decode() if isinstance(host, bytes) else str(host)
        ):
            raise RemoteCallForbidden(f"tests may not resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[MockUpstream]:
    server = MockUpstream()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def upstream(upstream_server: MockUpstream) -> MockUpstream:
    """The loopback upstream with an empty script."""
    upstream_server.reset()
    return upstream_server


@pytest.fixture
async def registry(upstream: MockUpstream) -> AsyncIterator[ProviderRegistry]:
    """Providers ``oa`` (OpenAI), ``an`` (Anthropic) and ``gm`` (Gemini), all on the upstream."""
    secret: Any = API_KEY
    providers = {
        "oa": LLMProviderSettings(
            kind="openai", base_url=f"{upstream.url}/v1", api_key=secret, timeout_s=2
        ),
        "an": LLMProviderSettings(
            kind="anthropic", base_url=upstream.url, api_key=secret, timeout_s=2
        ),
        "gm": LLMProviderSettings(
            kind="gemini", base_url=upstream.url, api_key=secret, timeout_s=2
        ),
    }
    registry = ProviderRegistry(providers, env={})
    yield registry
    await registry.aclose()


class RoostBackend(NamedTuple):
    """A Roost server answering with the bundled model: its URL, model name and API key."""

    url: str
    model: str
    api_key: str


@pytest.fixture(scope="session")
def roost_server(
    model_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RoostBackend]:
    engine = Engine(
        EngineConfig(home=model_home, dtype="float32", kv_cache_gb=0.25, max_num_seqs=4)
    )
    key = "llm-test-key-0123456789abcdef"
    settings = load_settings(
        env={"ROOST_HOME": str(tmp_path_factory.mktemp("llm-roost")), "ROOST_API_KEY": key}
    )
    app = create_app(settings)
    app.state.engine = engine
    server = ThreadedServer(app).start()
    try:
        yield RoostBackend(server.url, engine.model_name, key)
    finally:
        server.stop()
        engine.close()
