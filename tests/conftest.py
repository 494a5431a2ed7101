"""Session-wide fixtures: real PostgreSQL and Redis on loopback, isolated Roost settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from roost.config import Settings, load_settings
from tests.support.servers import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The test Redis, emptied before this test."""
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
