"""Session-wide fixtures and rules for every test.

- No test reaches beyond this machine (tests/support/network_guard.py).
- A test is marked by what it uses: the bundled model makes it ``slow``, a PostgreSQL
  server ``postgres``, a Redis server ``redis``, Debian's chromium ``browser``, so ``-m
  "not slow and not postgres and not redis and not browser"`` (``make test-fast``) needs
  neither the model nor a server nor a browser.
- Real PostgreSQL and Redis on loopback, isolated Roost settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

import roost.cli  # noqa: F401  (the roost command's OpenMP setting, before any test loads torch)
from roost.config import Settings, load_settings
from tests.support.markers import mark_by_fixtures, require_marker
from tests.support.network_guard import forbid_remote_calls
from tests.support.pgvector import PgvectorServer
from tests.support.servers import PostgresServer, RedisServer

pytest_plugins = ["pytester"]  # tests/test_suite_rules.py runs miniature suites


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_by_fixtures(items)


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> Iterator[None]:
    """Every test, and every session fixture, may connect to this machine only."""
    with pytest.MonkeyPatch.context() as patch:
        forbid_remote_calls(patch)
        yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    require_marker(request, "postgres")
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[PgvectorServer]:
    """PostgreSQL with pgvector (Debian's PostgreSQL has none): the vector store's backend."""
    server = PgvectorServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pgvector_url(pgvector_server: PgvectorServer, request: pytest.FixtureRequest) -> str:
    """A fresh database on a PostgreSQL server that has pgvector."""
    require_marker(request, "postgres")
    return pgvector_server.create_database()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer, request: pytest.FixtureRequest) -> str:
    """The test Redis, emptied before this test."""
    require_marker(request, "redis")
    with Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Roost home shared by the session, so the bundled GGUF is converted only once."""
    return tmp_path_factory.mktemp("model-home")


@pytest.fixture
def roost_home(tmp_path: Path) -> Path:
    home = tmp_path / "roost-home"
    home.mkdir()
    return home


@pytest.fixture
def settings(roost_home: Path) -> Settings:
    """Settings isolated from the developer's environment and home directory."""
    return load_settings(env={"ROOST_HOME": str(roost_home)})


@pytest.fixture
def without_roost_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ROOST_* variables of the developer's shell reach an in-process CLI command."""
    for name in list(os.environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
