"""Peer implementations for benchmarks/engine.py: HF transformers on the same weights."""

from __future__ import annotations

import time
from typing import Any

import torch

from roost.engine.loader import Checkpoint


def hf_model(checkpoint: Checkpoint, dtype: torch.dtype) -> Any:
    """LlamaForCausalLM holding the exact dequantized weights the engine uses."""
    import transformers

    cfg = checkpoint.config
    hf_config = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        rms_norm_eps=cfg.rms_norm_eps,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_word_embeddings,
    )
    from transformers.initialization import no_init_weights

    with no_init_weights():  # random init of 135M weights is slow and overwritten anyway
        model = transformers.LlamaForCausalLM(hf_config).eval()
    state = dict(checkpoint.state)
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state)
    return model.to(dtype)


def hf_generate(model: Any, prompt: list[int], num_new: int) -> tuple[list[int], float]:
    """Greedy tokens and wall seconds of ``generate`` (exactly ``num_new`` tokens)."""
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([prompt]),
            max_new_tokens=num_new,
            min_new_tokens=num_new,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    return out[0, len(prompt) :].tolist(), time.perf_counter() - start


def hf_prefill_seconds(model: Any, num_tokens: int, repeats: int) -> float:
    """Best time of one forward pass over ``num_tokens`` tokens (logits of the last only)."""
    ids = torch.randint(100, 40000, (1, num_tokens))
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            model(ids, logits_to_keep=1)
            best = min(best, time.perf_counter() - start)
    return best


def hf_decode_tokens_per_s(model: Any, prompt: list[int], num_new: int) -> float:
    """Steady-state greedy decode rate: (generate N+1) − (generate 1) removes the prefill."""
    _, one = hf_generate(model, prompt, 1)
    _, many = hf_generate(model, prompt, num_new + 1)
    return num_new / max(many - one, 1e-9)
