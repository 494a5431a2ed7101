"""Benchmark of roost.engine on the bundled SmolLM2-135M, with HF transformers as peer.

Prints a table and writes JSON under benchmarks/results/. Run: ``python benchmarks/engine.py``
(``--quick`` for fewer repetitions; ``--skip-peers`` to measure the engine only).
``--served`` measures as clients meet it: ``roost serve`` with defaults, the openai SDK over
HTTP (see ``served_engine.py``), with HF fp32 in the same run; those are the figures the
targets refer to. The in-process figures are diagnostics.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_peers import hf_decode_tokens_per_s, hf_generate, hf_model, hf_prefill_seconds
from roost.engine import Engine, EngineConfig, SamplingParams
from roost.engine.loader import load_checkpoint

RESULTS = Path(__file__).resolve().parent / "results"
CHECK_PROMPTS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain what a hash table is.",
    "Give me three tips for better sleep.",
    "What is 17 times 3?",
    "Translate 'good morning' into Spanish.",
    "Who wrote Romeo and Juliet?",
    "Describe a cat in two sentences.",
    "What is photosynthesis?",
    "List the planets of the solar system.",
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_matmul_peak(dtype: torch.dtype) -> float:
    """FLOP/s of a large matmul in ``dtype`` (the compute roof for prefill)."""
    a = torch.randn(2048, 2048, dtype=dtype)
    b = torch.randn(2048, 2048, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best


def measure_copy_bandwidth() -> float:
    """Bytes/s of a 256 MiB tensor copy, counting read + write (the memory roof for decode)."""
    src = torch.empty(64 * 2**20, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * 4 / best


def random_prompt(length: int, seed: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(100, 40000, (length,), generator=generator).tolist()


def engine_prefill(engine: Engine, length: int, repeats: int) -> float:
    """Best time to first token for a fresh ``length``-token prompt (no cache hits)."""
    best = float("inf")
    for rep in range(repeats):
        [out] = engine.generate(random_prompt(length, 1000 + rep), SamplingParams(max_tokens=1))
        assert out.usage.time_to_first_token_s is not None
        best = min(best, out.usage.time_to_first_token_s)
    return best


def engine_decode(engine: Engine, num_streams: int, num_tokens: int) -> float:
    """Aggregate decode tokens/s with ``num_streams`` concurrent greedy requests."""
    prompts = [random_prompt(64, 5000 + num_streams * 100 + i) for i in range(num_streams)]
    params = SamplingParams(temperature=0, max_tokens=num_tokens, ignore_eos=True)
    outputs = engine.generate(prompts, params)
    # All requests arrive together, so usage times share an origin: decode runs from the
    # last first token to the last finish.
    window_start = max(o.usage.time_to_first_token_s or 0.0 for o in outputs)
    window_end = max(o.usage.total_time_s for o in outputs)
    decoded = sum(o.usage.completion_tokens - 1 for o in outputs)
    return (
        decoded / max(window_end - window_start, 1e-9)
        if num_streams > 1
        else (outputs[0].usage.decode_tokens_per_s)
    )


def prefill_flops(engine: Engine, length: int) -> float:
    cfg = engine.model_config
    matmul_params = cfg.num_params - cfg.vocab_size * cfg.hidden_size  # embedding is a lookup
    attention = 2 * cfg.num_layers * cfg.num_heads * cfg.head_dim * length * length  # causal
    return 2 * matmul_params * length + attention


def weight_bytes_per_step(engine: Engine) -> float:
    cfg = engine.model_config
    element = torch.empty((), dtype=engine.dtype).element_size()
    body = cfg.num_params - cfg.vocab_size * cfg.hidden_size
    return body * element + cfg.vocab_size * cfg.hidden_size * element  # + bf16/fp32 head


def correctness_check(home: Path, num_tokens: int) -> dict[str, Any]:
    """Greedy tokens of the engine (fp32) vs transformers on the same weights."""
    checkpoint = load_checkpoint("smollm2-135m-instruct", home)
    reference = hf_model(checkpoint, torch.float32)
    config = EngineConfig(home=home, dtype="float32", kv_cache_gb=0.2)
    matches = []
    with Engine(config) as engine:
        prompts = [
            engine.apply_chat_template([{"role": "user", "content": p}]) for p in CHECK_PROMPTS
        ]
        params = SamplingParams(temperature=0, max_tokens=num_tokens, ignore_eos=True)
        outputs = engine.generate(prompts, params)
        # The reference runs single-threaded: its many small ops stall on thread barriers
        # when the machine is shared, and only its tokens matter here.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            expected_all = [hf_generate(reference, p, num_tokens)[0] for p in prompts]
        finally:
            torch.set_num_threads(threads)
        for output, expected in zip(outputs, expected_all, strict=True):
            same = next(
                (
                    i
                    for i, (a, b) in enumerate(zip(output.token_ids, expected, strict=True))
                    if a != b
                ),
                num_tokens,
            )
            matches.append(same)
    return {
        "prompts": len(CHECK_PROMPTS),
        "tokens_each": num_tokens,
        "identical": sum(m == num_tokens for m in matches),
        "first_divergence": matches,
    }


def served_main(console: Console, home: Path, repeats: int, num_tokens: int) -> None:
    """Served decode/prefill against HF fp32 in the same run, each with its roofline."""
    from served_engine import in_process_decode, numpy_copy_bandwidth, served_figures

    streams, prefill_tokens = 16, 2048
    load_start = os.getloadavg()
    bandwidth = numpy_copy_bandwidth()
    matmul_peak = measure_matmul_peak(torch.bfloat16)
    console.print(f"load average {load_start}; copy {bandwidth / 1e9:.1f} GB/s (read+write)")
    served = served_figures(
        home,
        num_tokens=num_tokens,
        repeats=repeats,
        streams=streams,
        prefill_tokens=prefill_tokens,
    )
    console.print(f"served done, load {os.getloadavg()}")
    diag = in_process_decode(home, num_tokens, repeats)
    checkpoint = load_checkpoint("smollm2-135m-instruct", home)
    model = hf_model(checkpoint, torch.float32)
    prompt = random_prompt(64, 7)
    hf_generate(model, prompt, 2)  # warm up
    hf_load = os.getloadavg()[0]
    hf_decode = statistics.median(
        hf_decode_tokens_per_s(model, prompt, num_tokens) for _ in range(repeats)
    )
    hf_prefill = statistics.median(
        hf_prefill_seconds(model, prefill_tokens, 1) for _ in range(repeats)
    )
    del model
    # Roofline: a decode step reads every weight once plus the K/V of its context.
    context = 40 + num_tokens // 2  # mean context of the single stream (prompt ~40)
    step_bytes = diag["weight_bytes_per_token"] + context * diag["kv_bytes_per_token"]
    decode_roof = bandwidth / step_bytes
    with Engine(EngineConfig(home=home, kv_cache_gb=0.2)) as engine:
        flops = prefill_flops(engine, int(served["prefill_prompt_tokens"]))
    prefill_roof_s = flops / matmul_peak
    single = served["decode_1_tok_s"]
    multi = served[f"decode_{streams}_tok_s"]
    table = Table(title="served (roost serve defaults, openai SDK, streamed) vs HF fp32")
    for column in ("figure", "Roost served", "HF fp32", "ratio", "roofline"):
        table.add_column(column)
    table.add_row(
        "decode x1",
        f"{single:.1f} tok/s",
        f"{hf_decode:.1f} tok/s",
        f"{single / hf_decode:.2f}x HF (target >= 2.5x)",
        f"{single / decode_roof:.0%} of {decode_roof:.0f} tok/s",
    )
    table.add_row(
        f"decode x{streams}",
        f"{multi:.1f} tok/s",
        "",
        f"{multi / single:.1f}x single (target >= 6x)",
        "",
    )
    table.add_row(
        f"prefill {int(served['prefill_prompt_tokens'])}",
        f"{served['prefill_s']:.2f} s",
        f"{hf_prefill:.2f} s",
        f"{served['prefill_s'] / hf_prefill:.2f}x HF time (target <= 0.5x)",
        f"{prefill_roof_s / served['prefill_s']:.0%} of bf16 matmul",
    )
    table.add_row(
        "decode x1 in-process (diagnostic)",
        f"{diag['decode_1_tok_s']:.1f} tok/s",
        "",
        f"HTTP keeps {single / diag['decode_1_tok_s']:.0%}",
        f"{diag['weights']}",
    )
    console.print(table)
    load_end = os.getloadavg()
    console.print(f"load average: start {load_start}, HF phase {hf_load:.2f}, end {load_end}")
    results = {
        "mode": "served",
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "copy_bytes_per_s": bandwidth,
        "bf16_matmul_flops": matmul_peak,
        "served": served,
        "in_process": diag,
        "hf_fp32": {"decode_1_tok_s": hf_decode, "prefill_s": hf_prefill, "load": hf_load},
        "roofline": {"decode_tok_s": decode_roof, "step_bytes": step_bytes},
        "load_average_start": load_start,
        "load_average_end": load_end,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"engine-served-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--served", action="store_true", help="roost serve + openai SDK, HF fp32 in the same run"
    )
    parser.add_argument("--repeats", type=int, default=3, help="served mode: runs per figure")
    parser.add_argument("--tokens", type=int, default=128, help="served mode: tokens a stream")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--skip-peers", action="store_true", help="engine figures only")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for engine and peers alike"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    repeats = 1 if args.quick else 2
    num_decode = 32 if args.quick else 64
    home = Path(os.environ.get("ROOST_HOME", tempfile.gettempdir() + "/roost-bench")).expanduser()
    console.print(f"load average before: {os.getloadavg()}; threads: {torch.get_num_threads()}")
    if args.served:
        served_main(console, home, args.repeats, args.tokens)
        return

    matmul_peak = measure_matmul_peak(torch.bfloat16)
    matmul_peak_fp32 = measure_matmul_peak(torch.float32)
    copy_bw = measure_copy_bandwidth()

    results: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "bf16_matmul_flops": matmul_peak,
            "fp32_matmul_flops": matmul_peak_fp32,
            "copy_bytes_per_s": copy_bw,
            "load_average_start": os.getloadavg(),
        }
    }
    rows: list[tuple[str, str, str, str, str]] = []

    start = time.perf_counter()
    config = EngineConfig(home=home, kv_cache_gb=1.0, max_num_seqs=32, num_threads=args.threads)
    with Engine(config) as engine:
        load_s = time.perf_counter() - start
        engine.generate(random_prompt(32, 1), SamplingParams(max_tokens=4))  # warm up
        own: dict[str, float] = {"load_s": load_s}
        for length in (512, 2048):
            seconds = engine_prefill(engine, length, repeats)
            own[f"prefill_{length}_s"] = seconds
            own[f"prefill_{length}_tok_s"] = length / seconds
            own[f"prefill_{length}_roofline"] = (
                prefill_flops(engine, length) / seconds / matmul_peak
            )
        for streams in (1, 4, 16, 32):
            rate = engine_decode(engine, streams, num_decode)
            own[f"decode_{streams}_tok_s"] = rate
            own[f"decode_{streams}_roofline"] = (
                weight_bytes_per_step(engine) * rate / streams / copy_bw
            )
        own["peak_rss_mb"] = peak_rss_mb()
        own["dtype"] = str(engine.dtype).removeprefix("torch.")  # type: ignore[assignment]
    results["engine"] = own
    rows += [
        (
            "prefill 512",
            f"{own['prefill_512_tok_s']:.0f} tok/s",
            f"{own['prefill_512_s']:.2f} s",
            f"{own['prefill_512_roofline']:.0%} of bf16 matmul",
            "",
        ),
        (
            "prefill 2048",
            f"{own['prefill_2048_tok_s']:.0f} tok/s",
            f"{own['prefill_2048_s']:.2f} s",
            f"{own['prefill_2048_roofline']:.0%} of bf16 matmul",
            "",
        ),
    ]
    for streams in (1, 4, 16, 32):
        rows.append(
            (
                f"decode x{streams}",
                f"{own[f'decode_{streams}_tok_s']:.1f} tok/s",
                "",
                f"{own[f'decode_{streams}_roofline']:.0%} of copy bw",
                f"{own[f'decode_{streams}_tok_s'] / own['decode_1_tok_s']:.1f}x single",
            )
        )
    rows.append(("peak RSS (engine)", f"{own['peak_rss_mb']:.0f} MB", "", "", ""))

    if not args.skip_peers:
        checkpoint = load_checkpoint("smollm2-135m-instruct", home)
        prompt = random_prompt(64, 7)
        peers: dict[str, dict[str, float]] = {}
        for name, dtype in (("hf_fp32", torch.float32), ("hf_bf16", torch.bfloat16)):
            model = hf_model(checkpoint, dtype)
            hf_generate(model, prompt, 2)  # warm up
            peer = {
                "prefill_512_s": hf_prefill_seconds(model, 512, repeats),
                "prefill_2048_s": hf_prefill_seconds(model, 2048, repeats),
                "decode_1_tok_s": hf_decode_tokens_per_s(model, prompt, num_decode),
            }
            peers[name] = peer
            del model
            rows.append(
                (
                    f"{name} generate",
                    f"{peer['decode_1_tok_s']:.1f} tok/s decode",
                    f"prefill 2048: {peer['prefill_2048_s']:.2f} s",
                    f"prefill 512: {peer['prefill_512_s']:.2f} s",
                    "",
                )
            )
        if importlib.util.find_spec("llama_cpp") is None:
            console.print(
                "llama-cpp-python is not installed: skipping that peer "
                "(install it separately to compare; it compiles for ~17 minutes)"
            )
        results["peers"] = peers
        base = peers["hf_fp32"]
        targets = {
            "decode_vs_hf_fp32": own["decode_1_tok_s"] / base["decode_1_tok_s"],
            "prefill_2048_time_vs_hf_fp32": own["prefill_2048_s"] / base["prefill_2048_s"],
            "aggregate_16_vs_single": own["decode_16_tok_s"] / own["decode_1_tok_s"],
        }
        results["targets"] = targets
        results["correctness"] = correctness_check(home, 32)

    results["load_average_end"] = os.getloadavg()
    table = Table(
        title=f"roost.engine — SmolLM2-135M ({own['dtype']}), {torch.get_num_threads()} threads"
    )
    for column in ("figure", "rate", "time", "roofline / note", "ratio"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if "targets" in results:
        t = results["targets"]
        console.print(
            f"single-stream decode = {t['decode_vs_hf_fp32']:.2f}x HF fp32 (target >= 3x); "
            f"2048 prefill time = {t['prefill_2048_time_vs_hf_fp32']:.2f}x HF fp32 (target <= 0.6x); "
            f"16 streams = {t['aggregate_16_vs_single']:.1f}x single (target >= 5x)"
        )
        c = results["correctness"]
        console.print(
            f"greedy vs transformers (fp32): {c['identical']}/{c['prompts']} prompts identical "
            f"over {c['tokens_each']} tokens; first divergence per prompt: {c['first_divergence']}"
        )
    RESULTS.mkdir(exist_ok=True)
    results["threads"] = torch.get_num_threads()
    path = RESULTS / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-t{torch.get_num_threads()}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
