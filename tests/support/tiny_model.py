"""A tiny random-weight Llama checkpoint as a Hugging Face directory: a second real model
for tests that load, list and swap models (it loads in well under a second)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers

VOCAB_SIZE = 96
HIDDEN = 64
INTERMEDIATE = 128
NUM_LAYERS = 2
NUM_HEADS = 4
NUM_KV_HEADS = 2
EOS_ID = VOCAB_SIZE - 1
# Renders every message's content, so any chat request has a prompt.
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}t1"


def write_tiny_llama(directory: Path, seed: int = 1234) -> Path:
    """Write config.json, model.safetensors, tokenizer.json and tokenizer_config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "model_type": "llama",
        "vocab_size": VOCAB_SIZE,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": NUM_LAYERS,
        "num_attention_heads": NUM_HEADS,
        "num_key_value_heads": NUM_KV_HEADS,
        "max_position_embeddings": 512,
        "eos_token_id": EOS_ID,
        "tie_word_embeddings": False,
    }
    (directory / "config.json").write_text(json.dumps(config))
    generator = torch.Generator().manual_seed(seed)
    head_dim = HIDDEN // NUM_HEADS

    def weight(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.5

    state = {
        "model.embed_tokens.weight": weight(VOCAB_SIZE, HIDDEN),
        "model.norm.weight": torch.ones(HIDDEN),
        "lm_head.weight": weight(VOCAB_SIZE, HIDDEN),
    }
    for i in range(NUM_LAYERS):
        prefix = f"model.layers.{i}."
        state |= {
            f"{prefix}self_attn.q_proj.weight": weight(NUM_HEADS * head_dim, HIDDEN),
            f"{prefix}self_attn.k_proj.weight": weight(NUM_KV_HEADS * head_dim, HIDDEN),
            f"{prefix}self_attn.v_proj.weight": weight(NUM_KV_HEADS * head_dim, HIDDEN),
            f"{prefix}self_attn.o_proj.weight": weight(HIDDEN, NUM_HEADS * head_dim),
            f"{prefix}mlp.gate_proj.weight": weight(INTERMEDIATE, HIDDEN),
            f"{prefix}mlp.up_proj.weight": weight(INTERMEDIATE, HIDDEN),
            f"{prefix}mlp.down_proj.weight": weight(HIDDEN, INTERMEDIATE),
            f"{prefix}input_layernorm.weight": torch.ones(HIDDEN),
            f"{prefix}post_attention_layernorm.weight": torch.ones(HIDDEN),
        }
    save_file(state, directory / "model.safetensors")
    vocab = {f"t{i}": i for i in range(VOCAB_SIZE)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t0"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(directory / "tokenizer.json"))
    tokenizer_config = {"eos_token": f"t{EOS_ID}", "chat_template": CHAT_TEMPLATE}
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return directory
