"""Fixtures for graph tests: a fake clock and checkpointers on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.graph import MemoryCheckpointer, SqliteCheckpointer
from roost.graph.checkpoint.base import Checkpointer


class FakeClock:
    """Records the waits retries ask for instead of sleeping."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        postgres = pytest.param("postgres", marks=pytest.mark.postgres)
        metafunc.parametrize("backend", ["memory", "sqlite", postgres])


@pytest.fixture
def checkpointer(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Checkpointer]:
    """A fresh, empty checkpointer of the parametrized backend."""
    saver: Checkpointer
    if backend == "memory":
        saver = MemoryCheckpointer()
    elif backend == "sqlite":
        saver = SqliteCheckpointer(tmp_path / "graph.db")
    else:
        from roost.graph import PostgresCheckpointer

        saver = PostgresCheckpointer(request.getfixturevalue("postgres_url"))
    yield saver
    saver.close()
