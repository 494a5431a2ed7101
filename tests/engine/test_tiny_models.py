"""Architectures without a bundled checkpoint, against transformers on tiny random weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models

from roost.engine import Engine, EngineConfig, SamplingParams

transformers = pytest.importorskip("transformers")

COMMON: dict[str, Any] = {
    "vocab_size": 96,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "eos_token_id": 95,
    "bos_token_id": 94,
}


def _llama3() -> Any:
    return transformers.LlamaConfig(
        **COMMON,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32,
        },
        rope_theta=500000.0,
    )


def _qwen2() -> Any:
    return transformers.Qwen2Config(**COMMON, tie_word_embeddings=False)


def _mistral() -> Any:
    return transformers.MistralConfig(**COMMON, sliding_window=12)


MODEL_CLASSES = {
    "llama3": (_llama3, "LlamaForCausalLM"),
    "qwen2": (_qwen2, "Qwen2ForCausalLM"),
    "mistral": (_mistral, "MistralForCausalLM"),
}


def _save_tiny(kind: str, directory: Path) -> Any:
    make_config, class_name = MODEL_CLASSES[kind]
    torch.manual_seed(1234)
    model = getattr(transformers, class_name)(make_config()).eval()
    with torch.no_grad():  # larger weights make greedy choices decisive, not coin flips
        for param in model.parameters():
            if param.dim() > 1:
                param.mul_(4.0)
    model.save_pretrained(directory, safe_serialization=True)
    vocab = {f"t{i}": i for i in range(COMMON["vocab_size"])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t0"))
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps({"eos_token": "t95"}))
    return model


@pytest.mark.parametrize("kind", sorted(MODEL_CLASSES))
def test_greedy_tokens_match_transformers(kind: str, tmp_path: Path) -> None:
    reference = _save_tiny(kind, tmp_path / kind)
    prompts = [[5, 17, 33, 2, 9, 60, 61, 62, 7, 8, 9, 10, 11, 12, 13, 14, 15], [3, 1, 4, 1, 5]]
    config = EngineConfig(
        model=str(tmp_path / kind),
        home=tmp_path,
        dtype="float32",
        kv_cache_gb=0.01,
        block_size=4,
    )
    with Engine(config) as engine:
        outputs = engine.generate(
            prompts, SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
        )
    for prompt, output in zip(prompts, outputs, strict=True):
        with torch.no_grad():
            expected = reference.generate(
                torch.tensor([prompt]),
                max_new_tokens=24,
                min_new_tokens=24,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )[0, len(prompt) :].tolist()
        assert output.token_ids == expected


def test_config_reads_rope_scaling_and_bias(tmp_path: Path) -> None:
    _save_tiny("llama3", tmp_path / "l")
    _save_tiny("qwen2", tmp_path / "q")
    from roost.engine.model_config import ModelConfig

    llama = ModelConfig.from_hf(json.loads((tmp_path / "l" / "config.json").read_text()))
    qwen = ModelConfig.from_hf(json.loads((tmp_path / "q" / "config.json").read_text()))
    assert llama.rope_scaling is not None
    assert llama.rope_scaling.factor == 8.0
    assert llama.rope_theta == 500000.0
    assert qwen.attention_bias
    assert not llama.attention_bias
