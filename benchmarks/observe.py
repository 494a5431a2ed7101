"""What the trace store costs and how fast it answers.

1. Gateway request overhead: the same in-process server (auth, the router, a scripted
   zero-latency model, the response encoding) with ``tracing.store`` on and off, requests
   one at a time, blocks of each interleaved so drift hits both alike; p50/p95 of each
   and the difference of the p50s.
2. Agent step overhead: an agent's ReAct graph (two model calls and one tool call per run,
   checkpointed to SQLite) invoked directly, store on vs off, interleaved the same way.
3. Trace queries over N spans (default 1,000,000) on SQLite, and on PostgreSQL when
   ``--postgres URL`` is given: the list with each filter, a cursor page, one trace's
   tree; p50/p95 per query and p95 over all.
4. Storage per span: database bytes (SQLite file after a WAL checkpoint, or the
   PostgreSQL relation sizes with their indexes) divided by spans stored.
5. ``--mode served``: 1 and 2 as a client meets them — two ``roost serve`` processes with
   default settings (store on / ``tracing.store = false``) driven over HTTP by the official
   ``openai`` SDK, p50/p99 wall and server CPU per request (benchmarks/observe_served.py).
Prints tables, writes JSON to benchmarks/results/observe.json.
Run: ``python benchmarks/observe.py`` (``--mode in-process|served|all``, ``--spans N``,
``--requests N``, ``--runs N``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from roost.config import load_settings
from roost.llm.messages import Message, ToolCallPart, ToolResultPart
from roost.llm.testing import CallInfo, FunctionModel
from roost.observe.span_record import SpanRecord
from roost.observe.trace_schema import TRACE_MIGRATIONS
from roost.observe.trace_store import TraceFilter, TraceStore
from roost.observe.tracing import get_tracer
from roost.server.app import create_app
from roost.storage import Database, migrate, new_id
from roost.tools.base import tool_from_function
from roost.tools.context import ToolContext
from roost.tools.toolsets import StaticToolset

RESULTS = Path(__file__).resolve().parent / "results"
EXTRA: dict[str, str] = {}
KEY = "bench-observe-key-0123456789abcdef"
console = Console()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- 1 and 2: overhead on the serving path ---------------------------------------------
def answer_with_tool(info: CallInfo) -> Message | str:
    if not any(isinstance(p, ToolResultPart) for m in info.messages for p in m.parts):
        return Message("assistant", (ToolCallPart("c0", "add", '{"a": 2, "b": 40}'),))
    return "42"


async def add(ctx: ToolContext, a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@asynccontextmanager
async def server(home: Path, *, store: bool) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = load_settings(
        env={
            "ROOST_HOME": str(home),
            "ROOST_API_KEY": KEY,
            "ROOST_ENGINE__ENABLED": "false",
            "ROOST_TRACING__STORE": "true" if store else "false",
            **EXTRA,
            "ROOST_LOGGING__LEVEL": "warning",
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        router = app.state.llm.router
        router.registry.register(FunctionModel(lambda _info: "ok", "function:fast"))
        router.registry.register(FunctionModel(answer_with_tool, "function:agent"))
        router.groups["fast"] = router._make_group("fast", [("function:fast", 1.0)], "priority")
        app.state.tools.registry.add_for_tenant(
            app.state.default_tenant_id, StaticToolset([tool_from_function(add)])
        )
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://roost", headers=headers
        ) as client:
            yield app, client


async def gateway_overhead(requests: int, block: int = 100) -> dict[str, Any]:
    """One server with the store on; its trace writer is detached from the process's spans
    for every other block of requests, so on and off run under the same load (this
    machine's load moves the p50 of separate servers by more than the effect measured).
    Wall-clock p50s compare latency; process CPU time per request (every thread, the
    writer's flush of the block's spans included) compares the work, which is what a
    busy server pays for, and is far less disturbed by other processes than wall time."""
    from roost.observe.tracing import SPAN_ROUTING

    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    samples: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, float] = {"on": 0.0, "off": 0.0}
    with tempfile.TemporaryDirectory(prefix="h-observe-bench-") as tmp:
        async with server(Path(tmp), store=True) as (app, client):
            writer = app.state.kernel.traces.writer
            for _ in range(50):  # warm up
                await client.post("/v1/chat/completions", json=body)
            await writer.flush()
            for i in range(2 * requests // block):
                mode = "on" if i % 2 == 0 else "off"
                if mode == "off":
                    SPAN_ROUTING.detach(writer)
                cpu_started = time.process_time()
                for _ in range(block):
                    started = time.perf_counter()
                    reply = await client.post("/v1/chat/completions", json=body)
                    samples[mode].append((time.perf_counter() - started) * 1000)
                    assert reply.status_code == 200, reply.text
                await writer.flush()  # the block's spans written: part of its cost
                cpu[mode] += time.process_time() - cpu_started
                SPAN_ROUTING.detach(writer)
                SPAN_ROUTING.attach(writer)
    on, off = samples["on"], samples["off"]
    cpu_on, cpu_off = (1000 * cpu[m] / len(samples[m]) for m in ("on", "off"))
    return {
        "requests_per_mode": len(on),
        "p50_ms": {"on": pct(on, 0.5), "off": pct(off, 0.5)},
        "p95_ms": {"on": pct(on, 0.95), "off": pct(off, 0.95)},
        "overhead_p50_ms": pct(on, 0.5) - pct(off, 0.5),
        "cpu_ms_per_request": {"on": cpu_on, "off": cpu_off},
        "overhead_cpu_ms": cpu_on - cpu_off,
    }


async def agent_overhead(runs: int, blocks: int) -> dict[str, Any]:
    from roost.agents.react import run_input
    from roost.agents.runtime import RunContext

    tracer = get_tracer("benchmarks.observe")
    samples: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="h-observe-bench-") as tmp:
        for block in range(blocks):
            for mode in ("on", "off") if block % 2 == 0 else ("off", "on"):
                async with server(Path(tmp) / mode, store=mode == "on") as (app, client):
                    spec = {"name": "calc", "model": "function:agent", "tools": ["add"]}
                    await client.post("/v1/agents", json={"spec": spec})
                    tenant = app.state.default_tenant_id
                    graphs = app.state.agents._run_graphs
                    graph = await graphs.get(graphs.name(tenant, "calc", 1))
                    for i in range(runs // blocks + 3):
                        thread, run_id = new_id("th"), new_id("run")
                        context = RunContext(tenant, thread, run_id, "calc", 1)
                        started = time.perf_counter()
                        with tracer.start_as_current_span("invoke_agent calc") as span:
                            span.set_attribute("roost.tenant_id", tenant)
                            await graph.ainvoke(run_input(context, "2+40?"), thread_id=thread)
                        if i >= 3:  # the first runs warm caches
                            samples[mode].append((time.perf_counter() - started) * 1000)
    on, off = samples["on"], samples["off"]
    p50_on, p50_off = pct(on, 0.5), pct(off, 0.5)
    return {
        "runs_per_mode": len(on),
        "steps_per_run": 3,
        "p50_ms": {"on": p50_on, "off": p50_off},
        "overhead_pct": 100 * (p50_on - p50_off) / p50_off,
    }


# -- 3 and 4: queries and storage ------------------------------------------------------
MODELS = ["gpt-4.1-mini", "claude-haiku-4-5", "gemini-2.5-flash", "smollm2-135m-instruct"]
AGENTS = [f"agent-{i}" for i in range(10)]
SPANS_PER_TRACE = 20


def synthetic_trace(rng: random.Random, tenant: str, index: int, start_us: int) -> list[SpanRecord]:
    """One agent run: request, run, 6 x (node, model call, tool call), shaped like Roost's."""
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = [f"{rng.getrandbits(64) | 1:016x}" for _ in range(SPANS_PER_TRACE)]
    run_id, thread = f"run_{index:08d}", f"th_{index % 1000:05d}"
    agent, model = AGENTS[index % len(AGENTS)], MODELS[index % len(MODELS)]
    failed = rng.random() < 0.03
    total_us = rng.randint(50_000, 5_000_000)

    def span(i: int, parent: int | None, name: str, **attributes: Any) -> SpanRecord:
        return SpanRecord(
            tenant, trace_id, ids[i], ids[parent] if parent is not None else None, name,
            "internal", start_us + i * 1000, max(1, total_us - i * 1000),
            "error" if failed and i == 0 else "ok", None,
            {"roost.tenant_id": tenant, "roost.run_id": run_id,
             "gen_ai.conversation.id": thread, "gen_ai.agent.name": agent, **attributes},
        )  # fmt: skip

    spans = [
        span(0, None, "POST /v1/threads/{id}/runs", **{"http.request.method": "POST"}),
        span(1, 0, f"invoke_agent {agent}", **{"gen_ai.operation.name": "invoke_agent"}),
    ]
    for step in range(6):
        node = 2 + 3 * step
        spans.append(span(node, 1, "node agent", **{"roost.graph.node": "agent"}))
        tokens = rng.randint(200, 4000)
        spans.append(span(node + 1, node, f"chat {model}", **{
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model, "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": tokens, "gen_ai.usage.output_tokens": tokens // 10,
            "roost.cost_usd": tokens * 4e-7,
        }))  # fmt: skip
        spans.append(span(node + 2, node, "execute_tool search", **{
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
            "gen_ai.tool.call.id": f"call_{step}",
        }))  # fmt: skip
    for record in spans:
        record.price(None)
    return spans


async def fill(store: TraceStore, spans: int, seed: int = 7) -> tuple[float, list[str]]:
    """Write ``spans`` spans over two tenants; returns (seconds, some trace ids of 'a')."""
    rng = random.Random(seed)
    traces = spans // SPANS_PER_TRACE
    now_us = time.time_ns() // 1000
    started = time.perf_counter()
    batch: list[SpanRecord] = []
    sample: list[str] = []
    for i in range(traces):
        tenant = "ten_a" if i % 2 == 0 else "ten_b"
        records = synthetic_trace(rng, tenant, i, now_us - (traces - i) * 10_000_000)
        if tenant == "ten_a" and i % 97 == 0:
            sample.append(records[0].trace_id)
        batch += records
        if len(batch) >= 5000:
            await store.write(batch)
            batch = []
            if i % 10_000 < 250:
                console.print(f"  {i * SPANS_PER_TRACE:,} spans written", highlight=False)
    await store.write(batch)
    return time.perf_counter() - started, sample


async def query_latencies(store: TraceStore, sample: list[str], repeats: int) -> dict[str, Any]:
    rng = random.Random(11)
    page = await store.list_traces("ten_a", TraceFilter(), limit=50)
    assert page.next_cursor is not None
    queries: dict[str, Callable[[], Awaitable[Any]]] = {
        "newest 50": lambda: store.list_traces("ten_a", TraceFilter(), limit=50),
        "by run": lambda: store.list_traces("ten_a", TraceFilter(run_id=f"run_{2 * rng.randrange(20_000):08d}")),
        "by thread": lambda: store.list_traces("ten_a", TraceFilter(thread_id=f"th_{2 * rng.randrange(500):05d}")),
        "by agent": lambda: store.list_traces("ten_a", TraceFilter(agent=rng.choice(AGENTS))),
        "by model": lambda: store.list_traces("ten_a", TraceFilter(model=rng.choice(MODELS))),
        "errors": lambda: store.list_traces("ten_a", TraceFilter(status="error")),
        "slow (min latency)": lambda: store.list_traces("ten_a", TraceFilter(min_latency_ms=4_900)),
        "costly (min cost)": lambda: store.list_traces("ten_a", TraceFilter(min_cost_usd=0.0095)),
        "last hour": lambda: store.list_traces("ten_a", TraceFilter(since_us=time.time_ns() // 1000 - 3_600_000_000)),
        "cursor page 2": lambda: store.list_traces("ten_a", TraceFilter(), cursor=page.next_cursor),
        "one trace tree": lambda: store.get_trace("ten_a", rng.choice(sample)),
    }  # fmt: skip
    per_query: dict[str, dict[str, float]] = {}
    every: list[float] = []
    for name, query in queries.items():
        await query()  # warm the page cache
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            await query()
            times.append((time.perf_counter() - started) * 1000)
        per_query[name] = {"p50_ms": pct(times, 0.5), "p95_ms": pct(times, 0.95)}
        every += times
    return {"queries": per_query, "p95_ms_all": pct(every, 0.95)}


def sqlite_bytes(path: Path) -> int:
    """The file with its WAL folded in (the connection pool is closed by now)."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def postgres_bytes(database: Database) -> int:
    row = await database.fetch_one(
        "SELECT pg_total_relation_size('trace_spans')"
        " + pg_total_relation_size('trace_summaries') AS n"
    )
    return int(row["n"]) if row else 0


async def query_benchmark(url: str, path: Path | None, spans: int, repeats: int) -> dict[str, Any]:
    database = await Database.connect(url)
    try:
        if database.dialect == "postgresql":  # a fresh schema for each run
            await database.execute("DROP TABLE IF EXISTS trace_spans, trace_summaries")
            known = await database.fetch_one("SELECT to_regclass('roost_schema_migrations') AS t")
            if known and known["t"]:
                await database.execute(
                    "DELETE FROM roost_schema_migrations WHERE component = 'traces'"
                )
        await migrate(database, TRACE_MIGRATIONS)
        store = TraceStore(database)
        seconds, sample = await fill(store, spans)
        await database.execute("ANALYZE")  # the planner's statistics, as in a long-lived store
        latencies = await query_latencies(store, sample, repeats)
        size = await postgres_bytes(database) if path is None else 0
    finally:
        await database.close()
    if path is not None:
        size = sqlite_bytes(path)
    return {
        "spans": spans,
        "write_spans_per_s": spans / seconds,
        **latencies,
        "bytes_per_span": size / spans,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if args.mode in ("served", "all"):
        from observe_served import served_overhead

        console.print("[bold]served: gateway request and agent run over HTTP[/]")
        results["served"] = await asyncio.to_thread(
            served_overhead, args.requests, args.runs, control=args.served_control
        )
        save(results)
    if args.mode == "served":
        return results
    console.print("[bold]1. gateway request overhead[/]")
    results["gateway"] = await gateway_overhead(args.requests)
    save(results)
    console.print("[bold]2. agent step overhead[/]")
    results["agent"] = await agent_overhead(args.runs, blocks=4)
    save(results)
    with tempfile.TemporaryDirectory(prefix="h-observe-bench-") as tmp:
        path = Path(tmp) / "traces.db"
        console.print(f"[bold]3. queries over {args.spans:,} spans (SQLite)[/]")
        results["sqlite"] = await query_benchmark(
            f"sqlite:///{path}", path, args.spans, args.repeats
        )
    save(results)
    if args.postgres:
        console.print(f"[bold]3. queries over {args.spans:,} spans (PostgreSQL)[/]")
        results["postgresql"] = await query_benchmark(args.postgres, None, args.spans, args.repeats)
    return results


def save(results: dict[str, Any]) -> None:
    """Written after each part too, so a later failure keeps the earlier figures."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "observe.json").write_text(json.dumps(results, indent=2) + "\n")


def report_served(served: dict[str, Any]) -> None:
    machine = served["machine"]
    table = Table(
        "served path", "store off", "store on", "overhead", "target",
        title=("A/A control, store off on both: " if served.get("control") else "")
        + f"Trace store overhead over HTTP ({machine['cpu']}, {machine['cpus']} CPUs, "
        f"load {machine['load_average_before'][0]:.1f}→{machine['load_average'][0]:.1f})",
    )  # fmt: skip
    for name, target in (("gateway", "≤ 0.2 ms p50"), ("agent", "≤ 5 %")):
        found = served[name]
        label = "gateway request" if name == "gateway" else "agent run, 3 steps"
        p50, p99, cpu = found["p50_ms"], found["p99_ms"], found["server_cpu_ms_per_request"]
        table.add_row(
            f"{label}, p50 wall ({found['requests_per_mode']} per mode)",
            f"{p50['off']:.2f} ms", f"{p50['on']:.2f} ms",
            f"{found['overhead_p50_ms']:+.2f} ms ({found['overhead_p50_pct']:+.1f} %)", target,
        )  # fmt: skip
        table.add_row(f"{label}, p99 wall", f"{p99['off']:.2f} ms", f"{p99['on']:.2f} ms", "", "")
        table.add_row(
            f"{label}, server CPU per request", f"{cpu['off']:.2f} ms", f"{cpu['on']:.2f} ms",
            f"{found['overhead_cpu_ms']:+.2f} ms ({found['overhead_cpu_pct']:+.1f} %)", "",
        )  # fmt: skip
    console.print(table)


def report(results: dict[str, Any]) -> None:
    if "served" in results:
        report_served(results["served"])
    if "gateway" not in results:
        return
    gateway, agent = results["gateway"], results["agent"]
    table = Table("serving path", "store off p50", "store on p50", "overhead", "target",
                  title="Trace store overhead")  # fmt: skip
    table.add_row(
        f"gateway request ({gateway['requests_per_mode']} per mode)",
        f"{gateway['p50_ms']['off']:.3f} ms", f"{gateway['p50_ms']['on']:.3f} ms",
        f"{gateway['overhead_p50_ms']:+.3f} ms", "≤ 0.2 ms",
    )  # fmt: skip
    cpu = gateway["cpu_ms_per_request"]
    table.add_row(
        "gateway request, CPU time (writes included)", f"{cpu['off']:.3f} ms",
        f"{cpu['on']:.3f} ms", f"{gateway['overhead_cpu_ms']:+.3f} ms", "",
    )  # fmt: skip
    table.add_row(
        f"agent run, 3 steps ({agent['runs_per_mode']} per mode)",
        f"{agent['p50_ms']['off']:.2f} ms", f"{agent['p50_ms']['on']:.2f} ms",
        f"{agent['overhead_pct']:+.1f} %", "≤ 5 %",
    )  # fmt: skip
    console.print(table)
    for backend in ("sqlite", "postgresql"):
        if backend not in results:
            continue
        found = results[backend]
        queries = Table("query", "p50 ms", "p95 ms",
                        title=f"{backend}: {found['spans']:,} spans, "
                        f"{found['bytes_per_span']:.0f} bytes/span, "
                        f"written at {found['write_spans_per_s']:,.0f} spans/s")  # fmt: skip
        for name, q in found["queries"].items():
            queries.add_row(name, f"{q['p50_ms']:.2f}", f"{q['p95_ms']:.2f}")
        queries.add_row("all (target p95 ≤ 50 ms on SQLite)", "", f"{found['p95_ms_all']:.2f}",
                        style="bold")  # fmt: skip
        console.print(queries)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["in-process", "served", "all"], default="all")
    parser.add_argument(
        "--served-control",
        action="store_true",
        help="diagnostic: the store off on both servers (A/A), the noise floor of --mode served",
    )
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--postgres", help="postgresql://… to report the same on PostgreSQL")
    found = asyncio.run(main(parser.parse_args()))
    report(found)
    save(found)
    console.print(f"wrote {RESULTS / 'observe.json'}")
