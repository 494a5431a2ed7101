"""Server time of the web UI's pages with 10k runs in the store, as a browser meets them.

Seeds a fresh home with ``--runs`` runs (default 10,000) of the default tenant on 200
threads and as many of a second tenant (so the listing must pick one tenant's rows), then
starts ``roost serve`` (defaults, except the local engine off: no page calls the model),
signs in through the form over HTTP and fetches each page ``--repeat`` times. The server
time of each request is read from the server's own access log (``duration_ms``, matched by
the ``x-request-id`` it returns); the client time is what httpx waited.

Prints a table, writes JSON to benchmarks/results/ui_pages.json.
Run: ``python benchmarks/ui_pages.py [--runs 10000] [--repeat 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.process import start_server  # noqa: E402

KEY = "bench-ui-key-0123456789abcdef"
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled", "interrupted")
LIMIT_MS = 300.0
console = Console()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


async def seed(home: Path, runs: int) -> dict[str, str]:
    """The store as a busy tenant leaves it; returns ids the pages are asked about."""
    from roost.config import load_settings
    from roost.platform import Platform, bootstrap
    from roost.platform.schema import migrate_all

    settings = load_settings(env={"ROOST_HOME": str(home), "ROOST_API_KEY": KEY})
    platform = await Platform.open(settings)
    try:
        report = await bootstrap(platform)
        await migrate_all(platform.database)
        other = await platform.tenants.create("bench-other")
        from roost.agents.registry import AgentRegistry
        from roost.agents.spec import AgentSpec

        registry = AgentRegistry(platform.database)
        for tenant_id in (report.tenant.id, other.id):
            for n in range(10):
                await registry.create(tenant_id, AgentSpec(name=f"agent-{n}"))
        now = int(time.time() * 1000)
        picked: dict[str, str] = {}
        for tenant_id in (report.tenant.id, other.id):
            threads = [{"i": f"thr_{tenant_id[-6:]}_{n}", "t": tenant_id, "c": now, "u": now}
                       for n in range(200)]  # fmt: skip
            rows = []
            for n in range(runs):
                created = now - (runs - n) * 1000
                rows.append({
                    "i": f"run_{tenant_id[-6:]}_{n:06d}", "t": tenant_id,
                    "th": threads[n % 200]["i"], "a": f"agent-{n % 10}", "s": STATUSES[n % 6],
                    "in": json.dumps(f"question {n}"), "out": json.dumps(f"answer {n}"),
                    "us": json.dumps({"input_tokens": 40, "output_tokens": 12}),
                    "c": created, "u": created,
                })  # fmt: skip
            async with platform.database.transaction() as conn:
                await conn.execute(
                    text("INSERT INTO agent_threads (id, tenant_id, metadata, created_at,"
                         " updated_at) VALUES (:i, :t, '{}', :c, :u)"),
                    threads,
                )  # fmt: skip
                await conn.execute(
                    text("INSERT INTO agent_runs (id, tenant_id, thread_id, agent, agent_version,"
                         " status, input, output, usage, created_at, updated_at)"
                         " VALUES (:i, :t, :th, :a, 1, :s, :in, :out, :us, :c, :u)"),
                    rows,
                )  # fmt: skip
            if tenant_id == report.tenant.id:
                middle = rows[runs // 2]
                picked = {"run": middle["i"], "thread": middle["th"],
                          "cursor": f"{middle['c']}:{middle['i']}"}  # fmt: skip
                picked["eval"] = await seed_evals_and_audit(platform, tenant_id, rows)
        return picked
    finally:
        await platform.close()


async def seed_evals_and_audit(platform: Any, tenant_id: str, runs: list[dict[str, Any]]) -> str:
    """20 versions of a prompt, an evaluation of 200 items, an experiment over the runs of
    agent-1 (a tenth of them) with feedback on every other one, and 2,000 audit records."""
    from roost.evals.experiments import ExperimentService, ExperimentSpec
    from roost.evals.schema import EVAL_MIGRATIONS
    from roost.prompts.schema import PROMPT_MIGRATIONS
    from roost.prompts.store import PromptStore
    from roost.storage import migrate

    database = platform.database
    await migrate(database, PROMPT_MIGRATIONS)
    await migrate(database, EVAL_MIGRATIONS)
    prompts = PromptStore(database)
    for n in range(20):
        template = "You are a helpful agent.\n" + "".join(f"Rule {k}.\n" for k in range(n + 5))
        await prompts.create(tenant_id, "support", template, labels=("production",))
    now = int(time.time() * 1000)
    results = [{"e": "eval_bench", "p": n, "t": tenant_id, "r": runs[n]["i"], "o": json.dumps(
        f"answer {n}"), "sc": float(n % 2), "ok": n % 2, "why": "matched" if n % 2 else
        "no match", "l": 400 + n} for n in range(200)]  # fmt: skip
    summary = {"items": 200, "passed": 100, "run_errors": 0,
               "pass_rate": {"count": 200, "successes": 100, "rate": 0.5, "ci95": [0.43, 0.57]},
               "score": {"count": 200, "mean": 0.5, "ci95": [0.43, 0.57]},
               "latency_ms": {"count": 200, "mean": 500.0, "ci95": [490.0, 510.0]}}  # fmt: skip
    async with database.transaction() as conn:
        await conn.execute(
            text("INSERT INTO eval_runs (id, tenant_id, dataset, dataset_version, target, scorer,"
                 " status, item_count, summary, created_at, updated_at) VALUES ('eval_bench',"
                 " :t, 'bench', 1, :g, :s, 'succeeded', 200, :m, :c, :c)"),
            {"t": tenant_id, "g": json.dumps({"agent": "agent-1", "run_agent": "agent-1",
             "run_version": 1}), "s": json.dumps({"type": "exact"}), "m": json.dumps(summary),
             "c": now},
        )  # fmt: skip
        await conn.execute(
            text("INSERT INTO eval_results (eval_id, position, tenant_id, run_id, status,"
                 " output, score, passed, reason, latency_ms) VALUES (:e, :p, :t, :r,"
                 " 'scored', :o, :sc, :ok, :why, :l)"),
            results,
        )  # fmt: skip
    spec = ExperimentSpec.model_validate({"name": "bench-ab", "agent": "agent-1", "variants": [
        {"name": "a", "model": "model-a"}, {"name": "b", "model": "model-b"}]})  # fmt: skip
    await ExperimentService(database).create(tenant_id, spec)
    mine = [r for r in runs if r["a"] == "agent-1"]
    async with database.transaction() as conn:
        await conn.execute(
            text("INSERT INTO experiment_runs (run_id, tenant_id, experiment, variant,"
                 " thread_id, model, created_at) VALUES (:r, :t, 'bench-ab', :v, :th, :m, :c)"),
            [{"r": r["i"], "t": tenant_id, "v": "ab"[n % 2], "th": r["th"],
              "m": f"model-{'ab'[n % 2]}", "c": r["c"]} for n, r in enumerate(mine)],
        )  # fmt: skip
        await conn.execute(
            text("INSERT INTO run_feedback (id, tenant_id, run_id, score, comment, created_at)"
                 " VALUES (:i, :t, :r, :s, '', :c)"),
            [{"i": f"fb_{n}", "t": tenant_id, "r": r["i"], "s": float(n % 3 > 0), "c": r["c"]}
             for n, r in enumerate(mine[::2])],
        )  # fmt: skip
    for n in range(2000):
        await platform.audit.record(tenant_id, "key:bench", f"agent.update.{n % 7}",
                                    target=f"name=agent-{n % 10}")  # fmt: skip
    return "eval_bench"


def sign_in(client: httpx.Client) -> None:
    form = client.get("/ui/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    done = client.post("/ui/login", data={"csrf": token.group(1), "api_key": KEY})
    assert done.status_code == 303, done.text


def server_ms(log: str, request_id: str) -> float:
    """``duration_ms`` of the access log line of ``request_id`` (JSON lines or console)."""
    for line in log.splitlines():
        if request_id not in line or "duration_ms" not in line:
            continue
        if line.startswith("{"):
            return float(json.loads(line)["duration_ms"])
        found = re.search(r"duration_ms=([0-9.]+)", line)
        if found:
            return float(found.group(1))
    raise LookupError(f"no access log line for {request_id}")


def logged_ms(server: Any, request_id: str) -> float:
    """The access log line is written just after the response: wait for it to arrive."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return server_ms(server.output, request_id)
        except LookupError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="h-ui-bench-"))
    picked = asyncio.run(seed(home, args.runs))
    pages = {
        "runs": "/ui/runs",
        "runs status=failed": "/ui/runs?status=failed",
        "runs agent=agent-7": "/ui/runs?agent=agent-7",
        "runs page in the middle": f"/ui/runs?before={picked['cursor']}",
        "run (timeline)": f"/ui/runs/{picked['run']}",
        "run timeline poll": f"/ui/runs/{picked['run']}/timeline",
        "thread": f"/ui/threads/{picked['thread']}",
        "approvals": "/ui/approvals",
        "agents": "/ui/agents",
        "traces": "/ui/traces",
        "usage": "/ui/usage",
        "memory": "/ui/memory?agent=agent-1",
        "prompts": "/ui/prompts",
        "prompt (20 versions, diff)": "/ui/prompts/support?a=1&b=20",
        "evaluations": "/ui/evals",
        "evaluation (200 items)": f"/ui/evals/{picked['eval']}",
        "experiments": "/ui/experiments",
        "experiment report": "/ui/experiments/bench-ab",
        "audit": "/ui/audit",
        "audit, action filter": "/ui/audit?action=agent.update.3",
        "audit verify": "/ui/audit/verify",
    }
    env = {"ROOST_HOME": str(home), "ROOST_API_KEY": KEY, "ROOST_ENGINE__ENABLED": "false"}
    server = start_server(env)
    results: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            sign_in(client)
            for name, path in pages.items():
                ids, client_ms = [], []
                for n in range(args.repeat + 3):
                    started = time.perf_counter()
                    answer = client.get(path)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                    if n >= 3:  # the first few warm caches and connections
                        ids.append(answer.headers["x-request-id"])
                        client_ms.append(elapsed)
                server_times = sorted(logged_ms(server, i) for i in ids)
                results[name] = {
                    "path": path,
                    "server_ms_median": statistics.median(server_times),
                    "server_ms_p95": server_times[int(0.95 * (len(server_times) - 1))],
                    "client_ms_median": statistics.median(client_ms),
                }
    finally:
        server.stop()
    table = Table(title=f"/ui pages, {args.runs} runs per tenant, 2 tenants ({cpu_model()})")
    for column in ("page", "server median ms", "server p95 ms", "client median ms"):
        table.add_column(column)
    for name, row in results.items():
        table.add_row(name, f"{row['server_ms_median']:.1f}", f"{row['server_ms_p95']:.1f}",
                      f"{row['client_ms_median']:.1f}")  # fmt: skip
    console.print(table)
    load = os.getloadavg()
    console.print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared machine)")
    slowest = max(row["server_ms_p95"] for row in results.values())
    console.print(f"slowest p95 {slowest:.1f} ms; target < {LIMIT_MS:.0f} ms")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ui_pages.json").write_text(
        json.dumps(
            {"runs_per_tenant": args.runs, "cpu": cpu_model(), "load": load, "pages": results},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
