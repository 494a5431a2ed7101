"""Fixtures for graph tests: a fake clock and checkpointers on every backend."""

from __future__ import annotations

import pytest


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


# Checkpointers on every backend: the conformance suite's fixture, so both test the same.
from tests.conformance.conftest import checkpointer  # noqa: E402, F401
