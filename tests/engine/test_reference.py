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
    from transformers.initialization import no_init_weights

    with no_init_weights():  # random init of 135M weights is slow and overwritten anyway
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
    # One thread: the reference's many small ops stall on thread barriers on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        expected_all = [_reference_tokens(reference, prompt) for prompt in prompts]
    finally:
        torch.set_num_threads(threads)
    assert [o.token_ids for o in outputs] == expected_all


def _reference_tokens(reference: object, prompt: list[int]) -> list[int]:
    with torch.no_grad():
        expected = reference.generate(  # type: ignore[attr-defined]
            torch.tensor([prompt]),
            max_new_tokens=16,
            min_new_tokens=16,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )[0, len(prompt) :].tolist()
    return list(expected)
