"""A burst of requests from many keep-alive clients against several servers at once: how
the two-process limit test and benchmarks/limits.py drive `roost serve` processes.

Each worker keeps one connection and sends its share one request after another, so the
burst is as short as the servers allow (500 requests gathered on one pooled client took
~20 s here, mostly queueing inside the client, and a long burst lets a per-minute bucket
refill meanwhile)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Burst:
    statuses: Counter[int]
    elapsed_s: float

    @property
    def admitted(self) -> int:
        return self.statuses[200]

    def refilled(self, per_minute: float) -> float:
        """Tokens a per-minute bucket got back while the burst lasted."""
        return self.elapsed_s * per_minute / 60


async def burst(
    urls: list[str],
    api_key: str,
    total: int,
    *,
    workers_per_server: int = 8,
    path: str = "/v1/models",
) -> Burst:
    workers = [url for url in urls for _ in range(workers_per_server)]
    shares = [total // len(workers) + (i < total % len(workers)) for i in range(len(workers))]
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {api_key}"}
    clients = [httpx.AsyncClient(base_url=url, headers=headers, timeout=60) for url in workers]
    try:
        # Connect first, so the burst measures requests and not TCP handshakes.
        await asyncio.gather(*(client.get("/health/live") for client in clients))

        async def send(client: httpx.AsyncClient, count: int) -> None:
            for _ in range(count):
                statuses[(await client.get(path)).status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(send(c, n) for c, n in zip(clients, shares, strict=True)))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return Burst(statuses, elapsed)
