"""Decode and prefill as a client meets them: ``roost serve`` with its default settings,
driven by the official ``openai`` SDK over HTTP (streamed chat completions).

- single stream: one greedy stream of N tokens (``ignore_eos``); decode rate from the
  first to the last streamed token, ``(completion_tokens - 1) / (t_last - t_first)``;
- 16 streams: 16 such streams at once; aggregate tokens after each stream's first token
  over the window from the last first token to the last finish;
- prefill 2048: a fresh ~2,048-token user message (a new session and unique words, so
  nothing is cached), ``max_tokens=1``: seconds to the first streamed token;
- in-process diagnostic: the same engine settings without HTTP (``Engine.stream``), to
  show what HTTP/SSE adds per token.

Each figure comes with the machine's roofline: decode against the weight (and K/V) bytes
read per step at the measured memory bandwidth (numpy copy of 256 MiB, read + write),
prefill against the measured bf16 matmul rate. Used by ``benchmarks/engine.py --served``.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import openai

from served_agent_cache import WORDS, client, model_name, served


def numpy_copy_bandwidth() -> float:
    """Bytes/s of copying 256 MiB with numpy, counting read + write (best of 10)."""
    src = np.ones(32 * 2**20)  # 256 MiB of float64
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(10):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def unique_text(rng: random.Random, count: int) -> str:
    """About ``count`` tokens whose order no earlier prompt shares (nothing cached)."""
    return " ".join(rng.choice(WORDS) for _ in range(count))


def stream_once(
    oai: openai.OpenAI, model: str, content: str, max_tokens: int, session: str
) -> dict[str, float]:
    """One streamed greedy request: first/last token times and completion tokens."""
    started = time.perf_counter()
    first = last = None
    usage = None
    stream = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": content}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
        extra_headers={"X-Roost-Session": session},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = now if first is None else first
            last = now
        if chunk.usage is not None:
            usage = chunk.usage
    if usage is None or first is None or last is None:
        raise RuntimeError("the stream ended without tokens or usage")
    return {
        "start": started,
        "first": first,
        "last": last,
        "ttft_s": first - started,
        "tokens": float(usage.completion_tokens),
        "prompt_tokens": float(usage.prompt_tokens),
    }


def decode_rate(run: dict[str, float]) -> float:
    return (run["tokens"] - 1) / max(run["last"] - run["first"], 1e-9)


def concurrent_rate(runs: list[dict[str, float]]) -> float:
    window_start = max(r["first"] for r in runs)
    window_end = max(r["last"] for r in runs)
    # Tokens streamed inside the window, assuming each stream's tokens arrive evenly.
    inside = 0.0
    for r in runs:
        span = max(r["last"] - r["first"], 1e-9)
        inside += (r["tokens"] - 1) * max(0.0, r["last"] - window_start) / span
    return inside / max(window_end - window_start, 1e-9)


def concurrent_streams(
    oai: openai.OpenAI, model: str, prompt: str, num_tokens: int, streams: int, tag: str
) -> list[dict[str, float]]:
    """``streams`` greedy streams at once, each in its own session."""
    runs: list[dict[str, float]] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        run = stream_once(oai, model, f"{index} {prompt}", num_tokens, f"{tag}-{index}")
        with lock:
            runs.append(run)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


def served_figures(
    home: Path, *, num_tokens: int, repeats: int, streams: int, prefill_tokens: int
) -> dict[str, Any]:
    """Medians over ``repeats`` of each served figure, with the load average of each."""
    rng = random.Random(5)
    prompt = "Tell me a long story about a lighthouse keeper."
    out: dict[str, Any] = {"single": [], "multi": [], "prefill": [], "load": []}
    with served(home) as server:
        oai, model = client(server), model_name(server)
        stream_once(oai, model, prompt, 8, "warm-up")
        for rep in range(repeats):
            out["load"].append(os.getloadavg()[0])
            out["single"].append(decode_rate(stream_once(oai, model, prompt, num_tokens, "s")))
            runs = concurrent_streams(oai, model, prompt, num_tokens, streams, f"m{rep}")
            out["multi"].append(concurrent_rate(runs))
            content = unique_text(rng, prefill_tokens)
            run = stream_once(oai, model, content, 1, f"prefill-{rep}-{time.time_ns()}")
            out["prefill"].append(run["ttft_s"])
            out["prefill_prompt_tokens"] = run["prompt_tokens"]
    return {
        "decode_1_tok_s": statistics.median(out["single"]),
        f"decode_{streams}_tok_s": statistics.median(out["multi"]),
        "prefill_s": statistics.median(out["prefill"]),
        "prefill_prompt_tokens": out["prefill_prompt_tokens"],
        "runs": out,
    }


def in_process_decode(home: Path, num_tokens: int, repeats: int) -> dict[str, Any]:
    """Diagnostic: the default engine without HTTP, streamed through ``Engine.stream``."""
    from roost.engine import Engine, EngineConfig, SamplingParams

    engine = Engine(EngineConfig(home=home))
    try:
        ids = engine.apply_chat_template(
            [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]
        )
        params = SamplingParams(temperature=0, max_tokens=num_tokens, ignore_eos=True)

        async def once() -> float:
            times = []
            async for event in engine.stream(ids, params):
                if event.token_ids:
                    times.append(time.perf_counter())
            return (len(times) - 1) / max(times[-1] - times[0], 1e-9)

        asyncio.run(once())  # warm up
        rates = [asyncio.run(once()) for _ in range(repeats)]
        return {
            "decode_1_tok_s": statistics.median(rates),
            "rates": rates,
            "weight_bytes_per_token": engine.runner.model.weight_bytes_per_token(),
            "weights": engine.weight_quantization.summary,
            "kv_bytes_per_token": engine.runner.kv_bytes_per_token(),
        }
    finally:
        engine.close()
