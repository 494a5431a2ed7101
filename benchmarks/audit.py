"""What the audit log costs: an audited state-changing call over HTTP, and the append and
the chain check on their own.

1. ``roost serve`` (SQLite home, engine off: no model is involved) and httpx as the client:
   p50/p99 of ``POST /v1/threads`` (one thread row + one chained audit append before the
   answer) and of ``GET /v1/audit?limit=100``.
2. In-process diagnostic: p50/p99 of ``AuditLog.record`` on SQLite, and on PostgreSQL with
   ``--postgres`` (4 concurrent writers on one tenant: the head-row lock at work), then
   ``verify_audit`` throughput in records/s.

Run: ``PYTHONPATH=src python benchmarks/audit.py [--requests 300] [--appends 1000] [--postgres]``
(the served part starts the ``roost`` on PATH; PYTHONPATH makes it this checkout's code).
Writes ``benchmarks/results/audit.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.process import start_server  # noqa: E402
from tests.support.servers import PostgresServer  # noqa: E402

from roost.security.audit import AuditLog  # noqa: E402
from roost.security.audit_verify import verify_audit  # noqa: E402
from roost.security.schema import CORE_MIGRATIONS  # noqa: E402
from roost.security.tenants import TenantStore  # noqa: E402
from roost.storage import Database, migrate  # noqa: E402

KEY = "h-audit-bench-key-0123456789abcdef"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return host.processor()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(ms, 0.5), 3), "p99_ms": round(pct(ms, 0.99), 3), "n": len(ms)}


async def served(requests: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="h-audit-bench-"))
    server = start_server(
        {"ROOST_HOME": str(home), "ROOST_API_KEY": KEY, "ROOST_ENGINE__ENABLED": "false"},
        timeout_s=180,
    )
    try:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            for _ in range(20):  # warm-up
                await client.post("/v1/threads", json={})
            writes, reads = [], []
            for _ in range(requests):
                started = time.perf_counter()
                response = await client.post("/v1/threads", json={})
                writes.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 201, response.text
            for _ in range(requests):
                started = time.perf_counter()
                response = await client.get("/v1/audit", params={"limit": 100})
                reads.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
        return {"post_thread": summary(writes), "get_audit_100": summary(reads)}
    finally:
        server.stop()


async def appends(url: str, count: int, writers: int) -> dict[str, Any]:
    db = await Database.connect(url)
    await migrate(db, CORE_MIGRATIONS)
    tenant = await TenantStore(db).create(f"bench-{time.time_ns()}")
    pools = [await Database.connect(url) for _ in range(writers)]
    latencies: list[float] = []

    async def writer(pool: Database) -> None:
        log = AuditLog(pool)
        for i in range(count // writers):
            started = time.perf_counter()
            await log.record(tenant.id, "key:bench", "tool.call", target=str(i),
                             details={"call_hash": "0" * 64, "duration_ms": 3})  # fmt: skip
            latencies.append((time.perf_counter() - started) * 1000)

    wall = time.perf_counter()
    await asyncio.gather(*(writer(p) for p in pools))
    wall = time.perf_counter() - wall
    started = time.perf_counter()
    report = await verify_audit(db, tenant.id)
    verify_s = time.perf_counter() - started
    assert report.ok
    assert report.checked[tenant.id] == len(latencies)
    for pool in pools:
        await pool.close()
    await db.close()
    return {**summary(latencies), "writers": writers, "appends_per_s": round(len(latencies) / wall),
            "verify_records_per_s": round(len(latencies) / verify_s)}  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"cpu": cpu_model(), "load_average": os.getloadavg()}
    result["served"] = await served(args.requests)
    home = Path(tempfile.mkdtemp(prefix="h-audit-bench-db-"))
    result["append_sqlite"] = await appends(f"sqlite:///{home}/a.db", args.appends, 1)
    if args.postgres:
        pg = PostgresServer.start()
        try:
            result["append_postgres_4_writers"] = await appends(
                pg.create_database(), args.appends, 4
            )
        finally:
            pg.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true")
    result = asyncio.run(main_async(parser.parse_args()))
    out = ROOT / "benchmarks" / "results" / "audit.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"CPU: {result['cpu']}; load average {result['load_average']}")
    print(f"{'measure':<40} {'p50 ms':>8} {'p99 ms':>8} {'extra':>24}")
    for sub, r in result["served"].items():
        print(f"{'HTTP ' + sub:<40} {r['p50_ms']:>8} {r['p99_ms']:>8}")
    for name in ("append_sqlite", "append_postgres_4_writers"):
        if name in result:
            row = result[name]
            extra = f"{row['appends_per_s']}/s, verify {row['verify_records_per_s']}/s"
            print(f"{'in-process ' + name:<40} {row['p50_ms']:>8} {row['p99_ms']:>8} {extra:>24}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
