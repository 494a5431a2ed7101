"""Agent runs across processes, measured the way clients meet them.

Scripted agents (the ``roost.llm.scripted_steps`` plugin: 5 tool-calling steps, then an
answer) are submitted over HTTP (``POST /v1/threads/{id}/runs`` with ``mode=stream``, one
thread each, all at once) and timed from submit to their ``run_end`` event:

1. PostgreSQL: ``roost serve`` with ``runs.workers = 0`` and 2 ``roost worker`` processes;
2. the same with 1 worker (target: 2 workers >= 1.6x the runs/s of 1);
3. SQLite, runs executed in the server (the default deployment);
4. 2 workers on PostgreSQL while one is SIGKILLed at random moments, 5 times (a new one
   started after each kill): every run must finish once; takeover time per kill; how
   often a step's side effect repeated (a kill between a tool's end and its checkpoint);
5. per-step overhead of a run through the kernel (queue, status row, events, workflow
   steps) against the same ReAct graph invoked alone, in-process (target <= 1.5x).

Prints tables, writes JSON to benchmarks/results/runs.json.
Run: ``python benchmarks/runs.py [--runs 200] [--kills 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.process import ServerProcess, start_server, start_worker  # noqa: E402
from tests.support.servers import PostgresServer  # noqa: E402

KEY = "bench-runs-key-0123456789abcdef"
STEPS = 5
SPEC = {"name": "stepper", "model": "scripted:steps", "tools": ["scripted_step"]}
console = Console()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def base_env(home: Path, database_url: str | None, effects: Path | None) -> dict[str, str]:
    env = {
        "ROOST_HOME": str(home),
        "ROOST_API_KEY": KEY,
        "ROOST_ENGINE__ENABLED": "false",
        "ROOST_PLUGINS": '["roost.llm.scripted_steps"]',
        "ROOST_MEMORY__CONSOLIDATION_INTERVAL_S": "0",
        "SCRIPTED_STEPS": str(STEPS),
        "PYTHONPATH": str(ROOT),
    }
    if database_url:
        env["ROOST_DATABASE_URL"] = database_url
    if effects:
        env["SCRIPTED_STEPS_DIR"] = str(effects)
    return env


async def one_run(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    started = time.perf_counter()
    thread = (await client.post("/v1/threads", json={})).json()["id"]
    # A task of its own per run, as clients send: nothing is reused from a previous run.
    task = f"go through the steps for order {n}"
    body = {"agent": "stepper", "input": task, "mode": "stream", "timeout_s": 3600}
    end: dict[str, Any] | None = None
    async with client.stream("POST", f"/v1/threads/{thread}/runs", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["event"] == "run_end":
                    end = event["run"]
    assert end is not None, "stream ended without run_end"
    return {"id": end["id"], "status": end["status"], "s": time.perf_counter() - started}


async def submit_all(url: str, count: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=3600, limits=limits
    ) as client:
        created = await client.post("/v1/agents", json={"spec": SPEC})
        assert created.status_code == 201, created.text
        started = time.perf_counter()
        results = await asyncio.gather(*(one_run(client, n) for n in range(count)))
        wall = time.perf_counter() - started
    latencies = sorted(r["s"] for r in results)
    return {
        "runs": count,
        "succeeded": sum(r["status"] == "succeeded" for r in results),
        "wall_s": wall,
        "runs_per_s": count / wall,
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[int(0.95 * (len(latencies) - 1))],
        "run_ids": [r["id"] for r in results],
    }


def deployment(
    env: dict[str, str], workers: int, concurrency: int, root: Path
) -> tuple[ServerProcess, list[ServerProcess]]:
    server = start_server({**env, "ROOST_RUNS__WORKERS": "0"} if workers else env)
    started = [
        start_worker({**env, "ROOST_HOME": str(root / f"w{n}")}, "--concurrency", str(concurrency))
        for n in range(workers)
    ]
    return server, started


def stop_all(processes: list[ServerProcess]) -> None:
    for process in processes:
        if process.process.poll() is None:
            process.stop()


def throughput(
    label: str, count: int, workers: int, concurrency: int, pg: PostgresServer | None
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="roost-bench-runs-"))
    url = pg.create_database() if pg else None
    server, started = deployment(base_env(root / "server", url, None), workers, concurrency, root)
    try:
        console.print(f"[dim]{label}: {count} runs …[/]")
        result = asyncio.run(submit_all(server.url, count))
    finally:
        stop_all([*started, server])
    result.pop("run_ids")
    return {"setup": label, **result}


def kill_test(count: int, kills: int, concurrency: int, pg: PostgresServer) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="roost-bench-kill-"))
    effects = root / "effects"
    effects.mkdir()
    env = base_env(root / "server", pg.create_database(), effects)
    env["ROOST_RUNS__HEARTBEAT_INTERVAL_S"] = "1"
    server, workers = deployment(env, 2, concurrency, root)
    takeovers: list[float] = []
    spawned = [2]
    idle_kills = [0]

    def finished_runs() -> set[str]:
        effects_file = effects / "effects.txt"
        if not effects_file.exists():
            return set()
        lines = [line.split() for line in effects_file.read_text().splitlines()]
        return {run for run, step, _ in lines if int(step) == STEPS}

    def started_by(pid: int) -> set[Path]:
        return {p for p in effects.glob("started-*") if p.read_text() == str(pid)}

    async def killer() -> None:
        rng = random.Random(7)
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            victim = rng.choice(workers)
            pid = victim.process.pid
            finished = finished_runs()
            # Runs the victim is executing: its newest step started there and the run has
            # not done its last step (a finished run's files still name the victim).
            held = {p.name for p in started_by(pid) if p.name.split("-")[1] not in finished}
            victim.process.send_signal(signal.SIGKILL)
            killed_at = time.perf_counter()
            await asyncio.to_thread(victim.stop)
            workers.remove(victim)
            spawned[0] += 1
            home = root / f"w{spawned[0]}"
            workers.append(
                await asyncio.to_thread(
                    start_worker,
                    {**env, "ROOST_HOME": str(home)},
                    "--concurrency",
                    str(concurrency),
                )
            )
            # Taken over: a step of a run the victim was executing starts in another process.
            runs = {name.split("-")[1] for name in held}
            if not runs:
                idle_kills[0] += 1  # it held no run at that moment: nothing to take over
            while runs:
                resumed = [
                    p for p in effects.glob("started-*")
                    if p.name.split("-")[1] in runs and p.read_text() not in ("", str(pid))
                    and p.stat().st_mtime > time.time() - (time.perf_counter() - killed_at)
                ]  # fmt: skip
                if resumed:
                    takeovers.append(time.perf_counter() - killed_at)
                    break
                if time.perf_counter() - killed_at > 120:
                    takeovers.append(float("inf"))
                    break
                await asyncio.sleep(0.05)

    async def both() -> dict[str, Any]:
        kill = asyncio.create_task(killer())
        result = await submit_all(server.url, count)
        await kill
        return result

    try:
        console.print(f"[dim]kill test: {count} runs, {kills} kills …[/]")
        result = asyncio.run(both())
    finally:
        stop_all([*workers, server])
    done: dict[tuple[str, str], int] = {}
    for line in (effects / "effects.txt").read_text().splitlines():
        run_id, step, _pid = line.split()
        done[(run_id, step)] = done.get((run_id, step), 0) + 1
    ids = set(result.pop("run_ids"))
    complete = sum(all((r, str(s)) in done for s in range(1, STEPS + 1)) for r in ids)
    return {
        **result,
        "kills": kills,
        "takeover_s": takeovers,
        "kills_with_no_run_in_flight": idle_kills[0],
        "runs_with_every_step": complete,
        "repeated_step_effects": sum(n - 1 for n in done.values() if n > 1),
    }


async def overhead(runs: int) -> dict[str, Any]:
    """Per-step time through the kernel vs the ReAct graph alone (in-process, SQLite)."""
    from roost.agents.react import ReactAgent, run_input
    from roost.agents.runtime import RunContext
    from roost.agents.spec import parse_spec
    from roost.config import load_settings
    from roost.graph import SqliteCheckpointer
    from roost.platform.kernel import Roost

    home = Path(tempfile.mkdtemp(prefix="roost-bench-overhead-"))
    env = base_env(home, None, None)
    os.environ.update({k: v for k, v in env.items() if not k.startswith("ROOST_")})
    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("ROOST_")})
    async with await Roost.open(settings) as kernel:
        tenant = await kernel.platform.tenants.find_by_name("default")
        assert tenant is not None
        await kernel.runs.registry.create(tenant.id, parse_spec(SPEC))
        graph = (
            ReactAgent(parse_spec(SPEC), kernel.runs.runtime)
            .builder()
            .compile(checkpointer=SqliteCheckpointer(home / "alone.db", tenant_id=tenant.id))
        )
        alone: list[float] = []
        through: list[float] = []
        for n in range(runs):
            context = RunContext(tenant.id, f"alone-{n}", f"run-alone-{n}", "stepper", 1)
            started = time.perf_counter()
            state = await graph.ainvoke(run_input(context, f"go {n}"), thread_id=f"alone-{n}")
            alone.append(time.perf_counter() - started)
            assert state["status"] == "succeeded", state
            thread = await kernel.runs.create_thread(tenant.id)
            started = time.perf_counter()
            run = await kernel.runs.start_run(tenant.id, thread.id, "stepper", f"go {n}")
            record = await kernel.runs.wait(tenant.id, run.id)
            through.append(time.perf_counter() - started)
            assert record.status == "succeeded", record
    # Each run is STEPS tool steps plus the answer: 2 * STEPS + 1 graph nodes after input.
    alone_ms = statistics.median(alone) * 1000 / STEPS
    through_ms = statistics.median(through) * 1000 / STEPS
    return {
        "runs": runs,
        "graph_alone_ms_per_step": alone_ms,
        "kernel_ms_per_step": through_ms,
        "ratio": through_ms / alone_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once per worker")
    parser.add_argument("--overhead-runs", type=int, default=20)
    parser.add_argument(
        "--only-kill", action="store_true", help="only the SIGKILL takeover part (prints it)"
    )
    args = parser.parse_args()
    pg = PostgresServer.start()
    if args.only_kill:
        try:
            only = kill_test(args.runs, args.kills, args.concurrency, pg)
        finally:
            pg.stop()
        console.print_json(data=only)
        return
    try:
        rows = [
            throughput("PostgreSQL, 2 workers", args.runs, 2, args.concurrency, pg),
            throughput("PostgreSQL, 1 worker", args.runs, 1, args.concurrency, pg),
            throughput("SQLite, in the server", args.runs, 0, args.concurrency, None),
        ]
        kill = kill_test(args.runs, args.kills, args.concurrency, pg) if args.kills else None
    finally:
        pg.stop()
    cost = asyncio.run(overhead(args.overhead_runs))
    table = Table(title=f"{args.runs} scripted agent runs ({STEPS} tool steps each) over HTTP")
    for column in ("setup", "ok", "runs/s", "p50 s", "p95 s"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["setup"], f"{row['succeeded']}/{row['runs']}", f"{row['runs_per_s']:.2f}",
            f"{row['p50_s']:.2f}", f"{row['p95_s']:.2f}",
        )  # fmt: skip
    console.print(table)
    scale = rows[0]["runs_per_s"] / rows[1]["runs_per_s"]
    console.print(f"2 workers / 1 worker: {scale:.2f}x runs/s (target >= 1.6x)")
    if kill:
        console.print(
            f"kill test: {kill['succeeded']}/{kill['runs']} succeeded,"
            f" {kill['runs_with_every_step']} with every step done,"
            f" {kill['repeated_step_effects']} repeated step side effects;"
            f" takeover after kill (s): {', '.join(f'{t:.1f}' for t in kill['takeover_s'])}"
        )
    console.print(
        f"per step: graph alone {cost['graph_alone_ms_per_step']:.1f} ms, through the kernel"
        f" {cost['kernel_ms_per_step']:.1f} ms: {cost['ratio']:.2f}x (target <= 1.5x)"
    )
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "cpu": cpu_model(),
        "throughput": rows,
        "scale_2_over_1": scale,
        "kill": kill,
        "overhead": cost,
    }
    (out / "runs.json").write_text(json.dumps(result, indent=2))
    console.print(f"CPU: {cpu_model()}; JSON: benchmarks/results/runs.json")


if __name__ == "__main__":
    main()
