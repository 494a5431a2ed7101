"""Limits and fair scheduling, measured (issue 17).

1. Limiter overhead per request, in process, on Redis, SQLite and PostgreSQL stores: a
   model call's limiter work before the model runs (admit with requests/min, login
   lock-out check and two concurrency slots; tokens/min taken: two round trips), the whole
   of it (plus tokens settled and slots released, one round trip after the response), and
   a plain route's (admit only). Targets: p50 <= 0.5 ms, p99 <= 2 ms. (In-process
   diagnostic: the store calls a request makes, without HTTP.)
2. Fairness through ``roost serve`` over HTTP with the official openai SDK and the bundled
   model: tenant A keeps 32 long generations streaming while tenant B sends 20 short
   requests one after another; B's p95 time to first token against B alone on an idle
   server, with fair scheduling on and off. Target: <= 3x idle.
3. Two ``roost serve`` processes on one limit store (SQLite file, PostgreSQL, Redis): a
   burst of 500 requests from 16 keep-alive clients against 100 requests/min admits
   100 +- 2 plus what the bucket refills while the burst lasts (reported beside it).

Prints tables, writes benchmarks/results/limits.json. Run: ``python benchmarks/limits.py``
(``--quick`` for fewer samples).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.burst import burst  # noqa: E402
from tests.support.process import ServerProcess, start_server  # noqa: E402
from tests.support.servers import PostgresServer, RedisServer  # noqa: E402

from roost.config import load_settings  # noqa: E402
from roost.limits.service import Limiter, current_admission  # noqa: E402
from roost.platform import Platform  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
KEY = "benchmark-key-0123456789abcdef"
console = Console()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- 1. overhead ---------------------------------------------------------------------------


async def overhead(backend: str, url: str | None, n: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="h-limits-bench-"))
    # Limits far above the load, so every request does the whole work and passes.
    env = {"ROOST_HOME": str(home)}
    for scope in ("TENANT", "KEY"):
        for name in ("REQUESTS_PER_MINUTE", "TOKENS_PER_MINUTE", "CONCURRENCY"):
            env[f"ROOST_LIMITS__{scope}__{name}"] = "1000000000"
    if backend == "redis":
        env["ROOST_REDIS_URL"] = str(url)
    if backend == "postgresql":
        env["ROOST_DATABASE_URL"] = str(url)
    settings = load_settings(env=env)
    platform = await Platform.open(settings)
    limiter = await Limiter.open(settings, platform.database, platform.redis)
    assert limiter.store.backend == backend
    model_call: list[float] = []
    before_model: list[float] = []
    plain: list[float] = []
    try:
        for i in range(n + 50):
            # As the server does it: the middleware admits and makes the admission current,
            # the metered chat takes tokens before the model runs and settles them after
            # (deferred into the admission), the middleware releases after the response.
            started = time.perf_counter()
            admission = await limiter.admit("default", "key1", concurrent=True, address="::1")
            token = current_admission.set(admission)
            await limiter.take_tokens("default", "key1", 300)
            admitted = time.perf_counter()
            await limiter.settle_tokens("default", "key1", -120)
            current_admission.reset(token)
            await admission.release()
            middle = time.perf_counter()
            await limiter.admit("default", "key1", concurrent=False, address="::1")
            done = time.perf_counter()
            if i >= 50:  # warm-up: connections, prepared scripts, caches
                model_call.append((middle - started) * 1000)
                before_model.append((admitted - started) * 1000)
                plain.append((done - middle) * 1000)
    finally:
        await limiter.close()
        await platform.close()
    return {
        "backend": backend,
        "requests": n,
        "model_call_p50_ms": pct(model_call, 0.5),
        "before_model_p50_ms": pct(before_model, 0.5),
        "before_model_p99_ms": pct(before_model, 0.99),
        "model_call_p99_ms": pct(model_call, 0.99),
        "plain_p50_ms": pct(plain, 0.5),
        "plain_p99_ms": pct(plain, 0.99),
    }


# -- 2. fairness ----------------------------------------------------------------------------


async def make_tenant_b(home: Path) -> str:
    settings = load_settings(env={"ROOST_HOME": str(home), "ROOST_API_KEY": KEY})
    platform = await Platform.open(settings)
    try:
        tenant = await platform.tenants.create("tenant-b")
        _, key = await platform.api_keys.create(tenant.id, "bench")
        return key
    finally:
        await platform.close()


async def ttft(client: openai.AsyncOpenAI, model: str, prompt: str, max_tokens: int) -> float:
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    first: float | None = None
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    return first if first is not None else time.perf_counter() - started


async def b_requests(url: str, key: str, model: str, count: int) -> list[float]:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as b:
        return [await ttft(b, model, f"Say hello number {i}.", 4) for i in range(count)]


async def fairness_run(fair: bool, num_a: int, num_b: int, long_tokens: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="h-limits-bench-"))
    b_key = await make_tenant_b(home)
    env = {
        "ROOST_HOME": str(home),
        "ROOST_API_KEY": KEY,
        "ROOST_ENGINE__FAIR_SCHEDULING": "true" if fair else "false",
        "ROOST_ENGINE__MAX_NUM_SEQS": "32",
    }
    server = start_server(env, ready_marker="model loaded", timeout_s=600)
    try:
        async with openai.AsyncOpenAI(
            base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=600
        ) as a:
            model = (await a.models.list()).data[0].id
            await b_requests(server.url, b_key, model, 3)  # warm-up
            idle = await b_requests(server.url, b_key, model, num_b)
            stop = asyncio.Event()
            running = 0
            all_running = asyncio.Event()

            async def keep_generating(i: int) -> None:
                nonlocal running
                while not stop.is_set():
                    stream = await a.chat.completions.create(
                        model=model,
                        messages=[{"role": "user", "content": f"Tell a long story {i}."}],
                        max_tokens=long_tokens, temperature=0.7, stream=True,
                        extra_body={"ignore_eos": True},
                    )  # fmt: skip
                    counted = False
                    async for _ in stream:
                        if not counted:
                            counted = True
                            running += 1
                            if running >= num_a:
                                all_running.set()
                        if stop.is_set():
                            break
                    running -= 1
                    await stream.close()

            flood = [asyncio.ensure_future(keep_generating(i)) for i in range(num_a)]
            await asyncio.wait_for(all_running.wait(), 300)
            loaded = await b_requests(server.url, b_key, model, num_b)
            stop.set()
            await asyncio.gather(*flood, return_exceptions=True)
    finally:
        server.stop()
    return {
        "fair_scheduling": fair,
        "b_idle_p50_ms": statistics.median(idle) * 1000,
        "b_idle_p95_ms": pct(idle, 0.95) * 1000,
        "b_loaded_p50_ms": statistics.median(loaded) * 1000,
        "b_loaded_p95_ms": pct(loaded, 0.95) * 1000,
        "ratio_p95": pct(loaded, 0.95) / pct(idle, 0.95),
    }


# -- 3. two processes, one store ----------------------------------------------------------


async def two_servers_burst(backend: str, url: str | None, total: int, rpm: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="h-limits-bench-"))
    env = {
        "ROOST_HOME": str(home),
        "ROOST_API_KEY": KEY,
        "ROOST_ENGINE__ENABLED": "false",
        "ROOST_RUNS__WORKERS": "0",
        "ROOST_LIMITS__TENANT__REQUESTS_PER_MINUTE": str(rpm),
        "ROOST_LIMITS__KEY__REQUESTS_PER_MINUTE": "0",
    }
    if backend == "redis":
        env["ROOST_REDIS_URL"] = str(url)
    if backend == "postgresql":
        env["ROOST_DATABASE_URL"] = str(url)
    servers: list[ServerProcess] = [start_server(env), start_server(env)]
    try:
        result = await burst([s.url for s in servers], KEY, total, workers_per_server=8)
    finally:
        for server in servers:
            server.stop()
    return {
        "backend": backend,
        "requests": total,
        "limit_per_min": rpm,
        "admitted": result.admitted,
        "refused_429": result.statuses[429],
        "other": sum(n for code, n in result.statuses.items() if code not in (200, 429)),
        "burst_s": result.elapsed_s,
        "refilled_during_burst": result.refilled(rpm),
        "over_limit_beyond_refill": result.admitted - rpm - math.floor(result.refilled(rpm)),
    }


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-fairness", action="store_true")
    parser.add_argument("--only-fairness", action="store_true")
    parser.add_argument(
        "--long-tokens", type=int, default=512, help="length of tenant A's generations"
    )
    parser.add_argument(
        "--b-requests", type=int, default=None, help="tenant B's requests (default 20, quick 10)"
    )
    args = parser.parse_args()
    n = 300 if args.quick else 2000
    redis = RedisServer.start()
    postgres = PostgresServer.start()
    result: dict[str, Any] = {"cpu": cpu_model()}
    try:
        if not args.only_fairness:
            result["overhead"] = [
                asyncio.run(overhead("redis", redis.url, n)),
                asyncio.run(overhead("sqlite", None, n)),
                asyncio.run(overhead("postgresql", postgres.create_database(), n)),
            ]
            console.print(result["overhead"])
            result["two_processes"] = [
                asyncio.run(two_servers_burst("sqlite", None, 500, 100)),
                asyncio.run(two_servers_burst("postgresql", postgres.create_database(), 500, 100)),
                asyncio.run(two_servers_burst("redis", redis.url, 500, 100)),
            ]
            console.print(result["two_processes"])
        if not args.skip_fairness:
            num_b = args.b_requests or (10 if args.quick else 20)
            result["fairness"] = [
                asyncio.run(fairness_run(True, 32, num_b, args.long_tokens)),
                asyncio.run(fairness_run(False, 32, num_b, args.long_tokens)),
            ]
    finally:
        redis.stop()
        postgres.stop()
    report(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "limits.json"
    if out.exists():  # a partial run (--skip-fairness, --only-fairness) keeps the rest
        result = {**json.loads(out.read_text()), **result}
    out.write_text(json.dumps(result, indent=2))
    console.print(f"CPU: {result['cpu']}; JSON: benchmarks/results/limits.json")


def report(result: dict[str, Any]) -> None:
    if "overhead" not in result:
        return _report_fairness(result)
    table = Table("store", "model call: before the model p50 / p99 ms", "whole p50 / p99 ms",
                  "plain route p50 / p99 ms",
                  title="Limiter overhead per request (targets p50 <= 0.5 ms, p99 <= 2 ms)")  # fmt: skip
    for row in result["overhead"]:
        table.add_row(row["backend"],
                      f"{row['before_model_p50_ms']:.3f} / {row['before_model_p99_ms']:.3f}",
                      f"{row['model_call_p50_ms']:.3f} / {row['model_call_p99_ms']:.3f}",
                      f"{row['plain_p50_ms']:.3f} / {row['plain_p99_ms']:.3f}")  # fmt: skip
    console.print(table)
    table = Table("store", "requests", "limit/min", "admitted", "429", "burst s",
                  "refilled meanwhile", "over limit + refill",
                  title="Two servers, one store (target 100 +- 2)")  # fmt: skip
    for row in result["two_processes"]:
        table.add_row(row["backend"], str(row["requests"]), str(row["limit_per_min"]),
                      str(row["admitted"]), str(row["refused_429"]), f"{row['burst_s']:.2f}",
                      f"{row['refilled_during_burst']:.1f}",
                      str(row["over_limit_beyond_refill"]))  # fmt: skip
    console.print(table)
    _report_fairness(result)


def _report_fairness(result: dict[str, Any]) -> None:
    if "fairness" in result:
        table = Table("fair scheduling", "B idle p50 ms", "B idle p95 ms", "B loaded p50 ms",
                      "B loaded p95 ms", "p95 ratio",
                      title="Tenant B's time to first token while A streams 32 long replies "
                      "(target <= 3x)")  # fmt: skip
        for row in result["fairness"]:
            table.add_row("on" if row["fair_scheduling"] else "off",
                          f"{row['b_idle_p50_ms']:.0f}", f"{row['b_idle_p95_ms']:.0f}",
                          f"{row['b_loaded_p50_ms']:.0f}", f"{row['b_loaded_p95_ms']:.0f}",
                          f"{row['ratio_p95']:.1f}x")  # fmt: skip
        console.print(table)


if __name__ == "__main__":
    main()
