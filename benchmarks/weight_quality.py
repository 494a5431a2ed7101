"""What weight-only quantization (``engine.weight_quantization``) changes in the model's output.

Loads the bundled SmolLM2-135M once per configuration and compares each with the exact
float32 engine (which matches transformers token for token):

- greedy agreement (prompts prefilled with float weights, tokens decoded with the integer
  ones, as served): 20 chat prompts (``kv_quality.QUESTIONS`` under its system prompt),
  32 greedy tokens each; identical continuations and mean tokens before a difference;
- perplexity, through the integer weights only, of the second half of ``kv_quality.REFERENCE_TEXT`` given the first half.

Run: ``python benchmarks/weight_quality.py`` (about a minute per configuration).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kv_quality import REFERENCE_TEXT, chat_prompts, perplexities
from roost.engine import Engine, EngineConfig, SamplingParams
from roost.engine.linear import QUANTIZED_MAX_ROWS, Linear

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS: list[tuple[str, str, str]] = [  # label, dtype, weight_quantization
    ("float32 exact (reference)", "float32", "none"),
    ("bf16, no quantization", "bfloat16", "none"),
    ("bf16 + auto (int4 body from the Q4_1 grid, bf16 head)", "bfloat16", "auto"),
    ("bf16 + int4 (body and head)", "bfloat16", "int4"),
    ("bf16 + int8 body, int4 head", "bfloat16", "int8"),
]


def run_config(home: Path, dtype: str, mode: str, num_tokens: int) -> dict[str, Any]:
    config = EngineConfig(
        home=home,
        dtype=dtype,
        weight_quantization=mode,
        kv_cache_gb=0.3,  # type: ignore[arg-type]
    )
    with Engine(config) as engine:
        prompts = chat_prompts(engine)
        params = SamplingParams(temperature=0, max_tokens=num_tokens, ignore_eos=True)
        # The prompts decode as one batch: let it take the integer weights, as a single
        # stream does, while prefill chunks keep the float ones.
        Linear.quantized_max_rows = len(prompts)
        try:
            outputs = engine.generate(prompts, params)
        finally:
            Linear.quantized_max_rows = QUANTIZED_MAX_ROWS
        text_ids = engine.tokenizer.encode(REFERENCE_TEXT)
        # Score the text through the decode path (integer weights at any batch size).
        Linear.quantized_max_rows = 1 << 30
        try:
            [ppl] = perplexities(engine.runner.model, engine.dtype, text_ids, [None])
        finally:
            Linear.quantized_max_rows = QUANTIZED_MAX_ROWS
        return {
            "tokens": [o.token_ids for o in outputs],
            "perplexity": ppl,
            "weights": engine.weight_quantization.summary,
        }


def matching(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    console = Console()
    home = Path(os.environ.get("ROOST_HOME", tempfile.gettempdir() + "/roost-bench")).expanduser()
    runs = {}
    for label, dtype, mode in CONFIGS:
        runs[label] = run_config(home, dtype, mode, args.tokens)
        console.print(f"{label}: {runs[label]['weights']}")
    reference = runs[CONFIGS[0][0]]
    table = Table(title="weight quantization vs the exact float32 engine (SmolLM2-135M)")
    for column in ("configuration", "identical of 20", "mean tokens before a difference", "ppl"):
        table.add_column(column)
    results: dict[str, Any] = {"load_average": os.getloadavg(), "configs": {}}
    for label, run in runs.items():
        prefixes = [matching(a, b) for a, b in zip(run["tokens"], reference["tokens"], strict=True)]
        change = run["perplexity"] / reference["perplexity"] - 1
        identical = sum(p == args.tokens for p in prefixes)
        table.add_row(
            label,
            f"{identical}",
            f"{statistics.mean(prefixes):.1f} / {args.tokens}",
            f"{run['perplexity']:.3f} ({change:+.2%})",
        )
        results["configs"][label] = {
            "weights": run["weights"],
            "identical": identical,
            "matching_prefixes": prefixes,
            "perplexity": run["perplexity"],
            "perplexity_change": change,
        }
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"weight-quality-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
