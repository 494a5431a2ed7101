"""Where a run's CPU goes across processes: server, workers, PostgreSQL and the client.

A diagnostic beside ``benchmarks/runs.py``: the same deployment and workload (scripted
runs of 5 tool steps over HTTP), with CPU seconds read from ``/proc/<pid>/stat`` before
and after, for 1 and for 2 workers. It shows whether a second worker can add throughput
on this machine (it cannot when the deployment already uses every core).

Run: ``python benchmarks/runs_cpu.py [--runs 100] [--workers 1 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.support.servers import PostgresServer  # noqa: E402

import runs as bench  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if b"postgres" in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def measure(pg: PostgresServer, workers: int, runs: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="roost-bench-cpu-"))
    env = bench.base_env(root / "server", pg.create_database(), None)
    server, started = bench.deployment(env, workers, 4, root)
    try:
        pids = {
            "server": [server.process.pid],
            "workers": [w.process.pid for w in started],
            "postgres": postgres_pids(),
        }
        before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        client_before = os.times()
        began = time.perf_counter()
        asyncio.run(bench.submit_all(server.url, runs))
        wall = time.perf_counter() - began
        client_after = os.times()
        pids["postgres"] = postgres_pids()  # backends come and go
        used = {k: sum(cpu_seconds(p) for p in v) - before[k] for k, v in pids.items()}
    finally:
        bench.stop_all([*started, server])
    used["client"] = (client_after.user - client_before.user) + (
        client_after.system - client_before.system
    )
    return {"wall_s": wall, "runs_per_s": runs / wall, **used, "cores": sum(used.values()) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    pg = PostgresServer.start()
    try:
        for workers in args.workers:
            row = measure(pg, workers, args.runs)
            bench.console.print(
                f"{workers} worker(s), {args.runs} runs: {row['runs_per_s']:.2f} runs/s;"
                f" CPU-s server {row['server']:.1f}, workers {row['workers']:.1f},"
                f" postgres {row['postgres']:.1f}, client {row['client']:.1f};"
                f" {row['cores']:.2f} cores busy of {os.cpu_count()}"
            )
    finally:
        pg.stop()
    bench.console.print(f"CPU: {bench.cpu_model()}")


if __name__ == "__main__":
    main()
