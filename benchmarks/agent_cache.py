"""Per-session KV caches (issue 4): returning-agent time to first token, quantized KV size and
quality, and a 32-agent swarm against llama-cpp-python, in one run.

    python benchmarks/agent_cache.py [--sections ttft,quant,swarm] [--contexts 1024,2048,4096]

- ttft: an agent returns with C tokens of context plus 50 new ones. Time to first token
  from its hot cache (in the pool), from its cold cache after an engine restart (read from
  disk, int8 by default), and for a full prefill of the same prompt.
- quant: bytes per token of int8 and int4 K/V against fp16, greedy agreement of 32-token
  continuations on 20 prompts, and perplexity on a fixed text (benchmarks/kv_quality.py).
- swarm: benchmarks/agent_swarm.py, Roost and llama-cpp-python (if installed) on the same
  GGUF file and the same prompts.

``--mode served`` measures the same through ``roost serve`` with its default settings and
the official openai SDK, conversations sent back as text (benchmarks/served_agent_cache.py):
returning-agent TTFT hot / after a restart / cold, and a swarm's prefilled vs new tokens.
These are the figures clients see; the in-process ones are diagnostics.

Prints tables and writes benchmarks/results/agent_cache.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_swarm import build_workload, llama_cpp_server, roost_server, run_swarm
from roost.engine import Engine, EngineConfig, SamplingParams
from roost.engine.loader import resolve_model_path
from roost.engine.outputs import EngineEvent
from roost.kvcache import open_session_store

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "smollm2-135m-instruct"
NEW_TOKENS = 50
REPEATS = 3
console = Console()


def word_vocab(engine: Engine, size: int = 400) -> list[int]:
    """Single-token ordinary words: prompts that look like text to the model."""
    text = (
        " the river carries silt from mountains to a delta where birds rest and fishermen mend"
        " nets while children watch boats return at dusk under a red sky full of gulls crying"
        " over harbour walls built of grey stone by workers long ago in winter storms"
    )
    vocab = sorted(set(engine.tokenizer.encode(text)))
    return (vocab * (size // len(vocab) + 1))[:size]


def ttft(
    engine: Engine, prompt: list[int], *, tenant: str, session: str | None
) -> tuple[float, int]:
    """Seconds from submit to the first token, and the prompt tokens served from cache."""
    events: queue.SimpleQueue[EngineEvent] = queue.SimpleQueue()
    params = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True)
    sent = time.perf_counter()
    engine.submit(prompt, params, events.put, tenant_id=tenant, session_id=session)
    first: float | None = None
    while True:
        event = events.get()
        if first is None and event.token_ids:
            first = time.perf_counter() - sent
        if event.finished:
            assert event.usage is not None, event.error
            assert first is not None
            return first, event.usage.cached_prompt_tokens


def engine_for(home: Path, kv_dir: Path, scheme: str, **extra: Any) -> Engine:
    return Engine(
        EngineConfig(
            model=MODEL,
            home=home,
            kv_cache_gb=1.0,
            session_dir=kv_dir,
            session_quantization=scheme,  # type: ignore[arg-type]
            **extra,
        ),
        session_store=open_session_store,
    )


def bench_ttft(home: Path, contexts: list[int], scheme: str) -> dict[str, Any]:
    kv_dir = Path(tempfile.mkdtemp(prefix="roost-kv-bench-"))
    rows: dict[str, Any] = {}
    with engine_for(home, kv_dir, scheme) as engine:
        vocab = word_vocab(engine)
        prompts = {}
        for ctx in contexts:
            console.log(f"ttft: {ctx} tokens of context, full prefill and hot, {REPEATS} times")
            history = [vocab[(i * 7919) % len(vocab)] for i in range(ctx)]
            new = [vocab[(i * 104729 + ctx) % len(vocab)] for i in range(NEW_TOKENS)]
            prompts[ctx] = (history, new)
            prefill, hot = [], []
            for r in range(REPEATS):
                # A fresh tenant shares no cached block: a true full prefill.
                prefill.append(
                    ttft(engine, history + new, tenant=f"cold-{ctx}-{r}", session=None)[0]
                )
                ttft(engine, history, tenant="bench", session=f"hot-{ctx}-{r}")
                seconds, cached = ttft(
                    engine, history + new, tenant="bench", session=f"hot-{ctx}-{r}"
                )
                hot.append(seconds)
                ttft(engine, history, tenant="bench", session=f"disk-{ctx}-{r}")
            rows[ctx] = {
                "prefill_s": statistics.median(prefill),
                "hot_s": statistics.median(hot),
                "hot_cached_tokens": cached,
            }
        dtype = str(engine.dtype)
    # A restart: the sessions' caches were written to disk when the engine closed.
    console.log("ttft: engine restarted; returning agents read their caches from disk")
    with engine_for(home, kv_dir, scheme) as restarted:
        for ctx in contexts:
            history, new = prompts[ctx]
            disk = []
            for r in range(REPEATS):
                seconds, cached = ttft(
                    restarted, history + new, tenant="bench", session=f"disk-{ctx}-{r}"
                )
                disk.append(seconds)
            rows[ctx]["cold_s"] = statistics.median(disk)
            rows[ctx]["cold_cached_tokens"] = cached
    for row in rows.values():
        row["hot_speedup"] = row["prefill_s"] / row["hot_s"]
        row["cold_speedup"] = row["prefill_s"] / row["cold_s"]
    return {"scheme": scheme, "dtype": dtype, "contexts": rows}


def bench_quant(home: Path, tokens: int = 2048) -> dict[str, Any]:
    """Size of each scheme against fp16, and its quality on the 20 fixed chat prompts."""
    import torch

    from kv_quality import REFERENCE_TEXT, chat_prompts, measure_schemes
    from roost.kvcache.quantize import quantize

    config = EngineConfig(
        model=MODEL, home=home, dtype="float32", kv_cache_gb=0.5, session_cache=False
    )
    console.log("quant: greedy continuations and perplexity, exact vs int8 vs int4 K/V")
    with Engine(config) as engine:
        prompts = chat_prompts(engine)
        text = engine.tokenizer.encode(REFERENCE_TEXT)
        reports = measure_schemes(engine, ["int8", "int4"], prompts, text)
        shape = engine.runner.kv_cache[:, :tokens].shape  # [L, T, 2, H, D]
    fp16_bytes = torch.Size(shape).numel() * 2
    schemes: dict[str, Any] = {}
    for report in reports:
        size = quantize(torch.zeros(shape), report.scheme).nbytes  # sizes ignore the values
        schemes[report.scheme] = {
            "bytes_per_token": size / tokens,
            "bytes_per_token_vs_fp16": size / fp16_bytes,
            "greedy_unchanged": report.num_identical,
            "greedy_match_rate": report.identical_share,
            "mean_matching_tokens": report.mean_matching_tokens,
            "perplexity_exact": report.perplexity_exact,
            "perplexity_change": report.perplexity_change,
        }
    return {"tokens": tokens, "prompts": len(prompts), "schemes": schemes}


def bench_swarm(home: Path, agents: int, turns: int) -> dict[str, Any]:
    results: dict[str, Any] = {"workload": {"agents": agents, "turns": turns}}
    kv_dir = Path(tempfile.mkdtemp(prefix="roost-kv-swarm-"))
    with engine_for(home, kv_dir, "int8", max_num_seqs=agents) as engine:
        workload = build_workload(
            word_vocab(engine),
            agents=agents,
            turns=turns,
            system_tokens=1000,
            user_tokens=50,
            gen=32,
        )
        console.log(f"swarm: Roost, {agents} agents x {turns} turns")
        results["roost"] = run_swarm(workload, roost_server(engine, 32)).summary()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        console.print("llama-cpp-python is not installed (make bench-peers): peer skipped")
        return results
    serve = llama_cpp_server(
        resolve_model_path(MODEL), 32, n_ctx=2048, threads=os.cpu_count() or 2, agents=agents
    )
    console.log(f"swarm: llama-cpp-python, {agents} agents x {turns} turns")
    results["llama_cpp_python"] = run_swarm(workload, serve).summary()
    roost, peer = results["roost"], results["llama_cpp_python"]
    results["ratios"] = {
        "wall": roost["wall_s"] / peer["wall_s"],
        "ttft_p95": roost["ttft_p95_s"] / peer["ttft_p95_s"],
    }
    return results


def print_tables(results: dict[str, Any]) -> None:
    if "ttft" in results:
        t = results["ttft"]
        table = Table(
            title=f"Returning agent, +{NEW_TOKENS} tokens ({t['dtype']}, {t['scheme']} on disk)"
        )
        for column in ("context", "full prefill", "hot", "cold (restart)", "hot ×", "cold ×"):
            table.add_column(column, justify="right")
        for ctx, row in t["contexts"].items():
            table.add_row(
                str(ctx),
                f"{row['prefill_s'] * 1000:.0f} ms",
                f"{row['hot_s'] * 1000:.1f} ms",
                f"{row['cold_s'] * 1000:.1f} ms",
                f"{row['hot_speedup']:.1f} (≥30)",
                f"{row['cold_speedup']:.1f} (≥15)",
            )
        console.print(table)
    if "quant" in results:
        table = Table(title="Quantized K/V")
        for column in ("scheme", "bytes/token vs fp16", "greedy unchanged (≥90%)", "perplexity Δ"):
            table.add_column(column, justify="right")
        for scheme, row in results["quant"]["schemes"].items():
            table.add_row(
                scheme,
                f"{row['bytes_per_token_vs_fp16']:.3f}",
                f"{row['greedy_unchanged']}/{results['quant']['prompts']}"
                f" ({row['greedy_match_rate']:.0%})",
                f"{row['perplexity_change']:+.2%}",
            )
        console.print(table)
    if "swarm" in results:
        shape = results["swarm"]["workload"]
        table = Table(title=f"Agent swarm ({shape['agents']} agents × {shape['turns']} turns)")
        for column in ("server", "wall", "TTFT p50", "TTFT p95"):
            table.add_column(column, justify="right")
        for name, row in results["swarm"].items():
            if name in ("ratios", "workload"):
                continue
            table.add_row(
                name,
                f"{row['wall_s']:.1f} s",
                f"{row['ttft_p50_s'] * 1000:.0f} ms",
                f"{row['ttft_p95_s'] * 1000:.0f} ms",
            )
        console.print(table)
        if "ratios" in results["swarm"]:
            r = results["swarm"]["ratios"]
            console.print(
                f"Roost / llama-cpp-python: wall {r['wall']:.2f}, p95 TTFT {r['ttft_p95']:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="ttft,quant,swarm")
    parser.add_argument("--contexts", default="1024,2048,4096")
    parser.add_argument("--scheme", default="int8", choices=["none", "int8", "int4"])
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--home", type=Path, default=Path("~/.roost").expanduser())
    parser.add_argument("--mode", default="in-process", choices=["in-process", "served"])
    parser.add_argument("--repeats", type=int, default=3, help="served ttft: runs per context")
    parser.add_argument("--skip-peers", action="store_true", help="served: Roost only")
    parser.add_argument(
        "--server-env", action="append", default=[], help="served: KEY=VALUE (diagnostics)"
    )
    args = parser.parse_args()
    if args.mode == "served":
        main_served(args)
        return
    sections = set(args.sections.split(","))
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_start": os.getloadavg(),
    }
    if "ttft" in sections:
        contexts = [int(c) for c in args.contexts.split(",")]
        results["ttft"] = bench_ttft(args.home, contexts, args.scheme)
    if "quant" in sections:
        results["quant"] = bench_quant(args.home)
    if "swarm" in sections:
        results["swarm"] = bench_swarm(args.home, args.agents, args.turns)
    results["load_average_end"] = os.getloadavg()
    print_tables(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "agent_cache.json").write_text(json.dumps(results, indent=2, default=str))


def main_served(args: argparse.Namespace) -> None:
    import served_agent_cache as served

    served.SERVER_ENV.update(item.split("=", 1) for item in args.server_env)
    sections = set(args.sections.split(","))
    results: dict[str, Any] = {
        "mode": "served",
        "server_env": served.SERVER_ENV,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_start": os.getloadavg(),
    }
    if "ttft" in sections:
        contexts = [int(c) for c in args.contexts.split(",")]
        console.log(f"served ttft: contexts {contexts}, {args.repeats} runs each")
        results["ttft"] = served.bench_ttft(args.home, contexts, args.repeats)
    if "swarm" in sections:
        console.log(f"served swarm: {args.agents} agents x {args.turns} turns")
        results["swarm"] = served.bench_swarm(
            args.home, args.agents, args.turns, peer=not args.skip_peers
        )
    results["load_average_end"] = os.getloadavg()
    print_served(results)
    RESULTS.mkdir(exist_ok=True)
    # One file per run: a run of one section must not overwrite another section's figures.
    path = RESULTS / f"agent_cache_served-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    console.log(f"wrote {path}")


def print_served(results: dict[str, Any]) -> None:
    if "ttft" in results:
        table = Table(
            title="Returning agent through roost serve (+~60 new tokens, text round trip)"
        )
        for column in ("context", "prompt", "cold", "hot", "after restart", "hot ×", "restart ×"):
            table.add_column(column, justify="right")
        for ctx, row in results["ttft"].items():
            table.add_row(
                ctx,
                str(row["prompt_tokens"]),
                f"{row['cold_s'] * 1000:.0f} ms",
                f"{row['hot_s'] * 1000:.0f} ms",
                f"{row['restart_s'] * 1000:.0f} ms",
                f"{row['hot_speedup']:.1f} (≥20)",
                f"{row['restart_speedup']:.1f} (≥12)",
            )
        console.print(table)
    if "swarm" in results:
        s = results["swarm"]
        table = Table(title=f"Served swarm ({s['agents']} agents × {s['turns']} turns, concurrent)")
        for column in ("server", "wall", "TTFT p50", "TTFT p95", "prefilled", "reused", "new"):
            table.add_column(column, justify="right")
        table.add_row(
            "roost serve",
            f"{s['wall_s']:.1f} s",
            f"{s['ttft_p50_s']:.2f} s",
            f"{s['ttft_p95_s']:.2f} s",
            f"{s['prefilled_tokens']:,.0f}",
            f"{s['reused_tokens']:,.0f}",
            f"{s['new_tokens']:,}",
        )
        peer = s.get("llama_cpp_python")
        if peer is not None:
            table.add_row(
                "llama-cpp-python server",
                f"{peer['wall_s']:.1f} s",
                f"{peer['ttft_p50_s']:.2f} s",
                f"{peer['ttft_p95_s']:.2f} s",
                "",
                "",
                f"{peer['new_tokens']:,}",
            )
        console.print(table)
        console.print(f"prefilled / new tokens: {s['prefilled_over_new']:.2f} (target ≤ 1.5)")
        for label, run in (("roost serve", s), ("llama-cpp-python", s.get("llama_cpp_python"))):
            if isinstance(run, dict) and "ttft_by_turn" in run:
                turns = ", ".join(
                    f"{n}: {t['p50_s']:.2f}/{t['p95_s']:.2f} s"
                    for n, t in run["ttft_by_turn"].items()
                )
                console.print(f"TTFT p50/p95 by turn, {label}: {turns}")
        if "ratios" in s:
            r = s["ratios"]
            console.print(
                f"Roost / llama-cpp-python: wall {r['wall']:.3f} (target ≤ 0.15), "
                f"p95 TTFT {r['ttft_p95']:.3f} (target ≤ 0.1)"
            )
        elif "peer" in s:
            console.print(s["peer"])


if __name__ == "__main__":
    main()
