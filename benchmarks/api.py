"""Overhead of Roost's HTTP layer over the engine's Python API, on the bundled model.

The same chat requests (greedy, 64 new tokens) are run two ways in one run:
- directly through ``Engine.stream`` in this process;
- through ``roost serve`` (a separate process, real HTTP on loopback) with the
  official ``openai`` SDK streaming.
At 1 and 16 concurrent clients it reports time to first token (p50/p99), the latency the
HTTP path adds (per-request TTFT difference of matched requests), and streaming
throughput as a fraction of the engine's. Prints a table, writes JSON under
benchmarks/results/. Run: ``python benchmarks/api.py`` (``--requests N`` per level).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import openai
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.process import start_server

from roost.engine import Engine, EngineConfig, SamplingParams

RESULTS = Path(__file__).resolve().parent / "results"
KEY = "benchmark-key-0123456789abcdef"
TOPICS = ["the sea", "a city at night", "autumn", "a robot", "mountains", "coffee", "rain", "a cat"]
NEW_TOKENS = 64


@dataclass
class Sample:
    ttft_s: float
    total_s: float
    tokens: int


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a few sentences about {TOPICS[i % len(TOPICS)]}."}]


async def engine_request(engine: Engine, i: int) -> Sample:
    ids = engine.apply_chat_template(messages(i))
    params = SamplingParams(max_tokens=NEW_TOKENS, temperature=0, ignore_eos=True)
    start = time.perf_counter()
    first: float | None = None
    tokens = 0
    async for event in engine.stream(ids, params):
        if event.token_ids and first is None:
            first = time.perf_counter()
        tokens += len(event.token_ids)
    end = time.perf_counter()
    return Sample((first or end) - start, end - start, tokens)


async def api_request(client: openai.AsyncOpenAI, model: str, i: int) -> Sample:
    start = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=messages(i),  # type: ignore[arg-type]
        max_tokens=NEW_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter()
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    return Sample((first or end) - start, end - start, tokens)


async def run_level(make, concurrency: int, num_requests: int) -> tuple[list[Sample], float]:
    """Run ``num_requests`` requests, ``concurrency`` at a time; samples and wall time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Sample:
        async with gate:
            return await make(i)

    start = time.perf_counter()
    samples = await asyncio.gather(*(one(i) for i in range(num_requests)))
    return list(samples), time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(samples: list[Sample], wall_s: float) -> dict[str, float]:
    ttfts = [s.ttft_s for s in samples]
    return {
        "ttft_p50_ms": 1000 * statistics.median(ttfts),
        "ttft_p99_ms": 1000 * pct(ttfts, 0.99),
        "tokens_per_s": sum(s.tokens for s in samples) / wall_s,
    }


async def measure(engine: Engine, server_url: str, levels: list[int], n: int) -> dict:
    model = engine.model_name
    client = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key=KEY, max_retries=0)
    # Warm both paths (grammar-free, but first requests pay allocation and caches).
    await run_level(lambda i: engine_request(engine, i), 2, 4)
    await run_level(lambda i: api_request(client, model, i), 2, 4)
    report: dict[str, dict] = {}
    for level in levels:
        direct, direct_wall = await run_level(lambda i: engine_request(engine, i), level, n)
        http, http_wall = await run_level(lambda i: api_request(client, model, i), level, n)
        added = [h.ttft_s - d.ttft_s for h, d in zip(http, direct, strict=True)]
        report[str(level)] = {
            "engine": summarize(direct, direct_wall),
            "api": summarize(http, http_wall),
            "added_ttft_p50_ms": 1000 * statistics.median(added),
            "added_ttft_p99_ms": 1000 * pct(added, 0.99),
        }
        report[str(level)]["throughput_ratio"] = (
            report[str(level)]["api"]["tokens_per_s"] / report[str(level)]["engine"]["tokens_per_s"]
        )
    await client.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=32, help="requests per concurrency level")
    parser.add_argument("--levels", default="1,16")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    home = Path(tempfile.mkdtemp(prefix="roost-bench-api-"))
    env = {
        "ROOST_HOME": str(home),
        "ROOST_API_KEY": KEY,
        "ROOST_ENGINE__KV_CACHE_GB": "0.5",
        "PATH": os.environ["PATH"],
    }
    # Same engine configuration on both sides; only one side runs at a time.
    server = start_server(env, ready_marker="model loaded", timeout_s=300)
    engine = Engine(EngineConfig(home=home, kv_cache_gb=0.5))
    try:
        report = asyncio.run(measure(engine, server.url, levels, args.requests))
    finally:
        engine.close()
        server.stop()
    table = Table(title=f"HTTP layer vs engine API ({NEW_TOKENS} new tokens, greedy)")
    for column in ("clients", "engine TTFT p50", "API TTFT p50", "added p50", "added p99",
                   "engine tok/s", "API tok/s", "API/engine"):  # fmt: skip
        table.add_column(column, justify="right")
    for level, row in report.items():
        table.add_row(
            level,
            f"{row['engine']['ttft_p50_ms']:.1f} ms",
            f"{row['api']['ttft_p50_ms']:.1f} ms",
            f"{row['added_ttft_p50_ms']:.1f} ms",
            f"{row['added_ttft_p99_ms']:.1f} ms",
            f"{row['engine']['tokens_per_s']:.1f}",
            f"{row['api']['tokens_per_s']:.1f}",
            f"{row['throughput_ratio']:.2f}",
        )
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "api.json"
    out.write_text(json.dumps({"new_tokens": NEW_TOKENS, "levels": report}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
