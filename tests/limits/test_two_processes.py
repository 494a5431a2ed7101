"""Two `roost serve` processes on one limit store enforce one limit between them: a burst
far over a tenant's requests/min admits the limit, plus only what the bucket refilled
while the burst lasted (no per-process overshoot, no refill counted twice by a process
that waited for the store's lock), on the SQL stores (SQLite file, PostgreSQL; the Redis script decides atomically on the
Redis clock, raced by two apps in tests/server/test_limits.py and by benchmarks/limits.py
with two processes)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from tests.support.burst import burst
from tests.support.process import start_server

KEY = "two-process-key-0123456789abcdef"
LIMIT = 60  # per minute: one token back per second of burst


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
async def test_two_servers_admit_one_limit_in_a_burst(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {
        "ROOST_HOME": str(tmp_path / "home"),
        "ROOST_API_KEY": KEY,
        "ROOST_ENGINE__ENABLED": "false",
        "ROOST_RUNS__WORKERS": "0",
        "ROOST_LIMITS__TENANT__REQUESTS_PER_MINUTE": str(LIMIT),
        "ROOST_LIMITS__KEY__REQUESTS_PER_MINUTE": "0",
    }
    if backend == "postgresql":
        env["ROOST_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    # Started side by side: each start imports the whole platform (~10 s on a busy machine).
    first, second = await asyncio.gather(
        asyncio.to_thread(start_server, env), asyncio.to_thread(start_server, env)
    )
    try:
        result = await burst([first.url, second.url], KEY, 4 * LIMIT, workers_per_server=6)
    finally:
        first.stop()
        second.stop()
    assert set(result.statuses) == {200, 429}, result.statuses
    # The whole limit is usable, and no more than the limit plus what refilled meanwhile
    # (whole tokens only: a request takes one whole token).
    assert LIMIT <= result.admitted <= LIMIT + math.floor(result.refilled(LIMIT)), (
        result.admitted,
        result.elapsed_s,
    )
