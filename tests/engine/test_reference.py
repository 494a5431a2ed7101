"""The bundled model against transformers on the same dequantized weights (fp32)."""

from __future__ import annotations

import pytest
import torch

from roost.engine import Engine, SamplingParams
from roost.engine.loader import Checkpoint

transformers = pytest.importorskip("transformers")

PROMPTS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain what a hash table is in one sentence.",
]


def reference_model(checkpoint: Checkpoint) -> object:
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
    model = transformers.LlamaForCausalLM(hf_config).eval()
    state = dict(checkpoint.state)
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state)
    return model


@pytest.mark.slow
def test_greedy_tokens_match_transformers(
    smollm_engine: Engine, smollm_checkpoint: Checkpoint
) -> None:
    reference = reference_model(smollm_checkpoint)
    prompts = [smollm_engine.apply_chat_template([{"role": "user", "content": p}]) for p in PROMPTS]
    params = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
    outputs = smollm_engine.generate(prompts, params)  # batched: also covers batching
    for prompt, output in zip(prompts, outputs, strict=True):
        with torch.no_grad():
            expected = reference.generate(  # type: ignore[attr-defined]
                torch.tensor([prompt]),
                max_new_tokens=16,
                min_new_tokens=16,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )[0, len(prompt) :].tolist()
        assert output.token_ids == expected
