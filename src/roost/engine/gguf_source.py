"""Read a GGUF file: model config, tokenizer spec, and dequantized tensors under HF names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from roost.engine.model_config import SUPPORTED_ARCHITECTURES, ModelConfig
from roost.engine.tokenizer import TokenizerSpec, spec_from_gguf
from roost.errors import InvalidRequest

_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_BLOCK = re.compile(r"blk\.(\d+)\.(.+)")


class GGUFSource:
    """A GGUF checkpoint opened for conversion (memory-mapped; nothing dequantized yet)."""

    def __init__(self, path: Path) -> None:
        from gguf import GGUFReader  # imported lazily: only conversion needs it

        self.path = path
        self.reader = GGUFReader(path)
        self.fields: dict[str, Any] = {
            name: field.contents() for name, field in self.reader.fields.items()
        }
        self.config = self._config()

    def tokenizer_spec(self) -> TokenizerSpec:
        return spec_from_gguf(self.fields)

    @property
    def num_tensors(self) -> int:
        return len(self.reader.tensors)

    def _config(self) -> ModelConfig:
        arch = str(self.fields.get("general.architecture"))
        if arch not in SUPPORTED_ARCHITECTURES:
            raise InvalidRequest(
                f"{self.path}: GGUF architecture {arch!r} is not supported; "
                f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}",
                param="model",
            )

        def get(key: str, default: Any = None) -> Any:
            return self.fields.get(f"{arch}.{key}", default)

        names = {t.name for t in self.reader.tensors}
        hidden = int(get("embedding_length"))
        num_heads = int(get("attention.head_count"))
        vocab = len(self.fields["tokenizer.ggml.tokens"])
        extra: dict[str, Any] = {}
        rope_freqs = next((t for t in self.reader.tensors if t.name == "rope_freqs.weight"), None)
        if rope_freqs is not None:
            # llama.cpp stores Llama 3 rope scaling as per-frequency divisors.
            extra["rope_freq_factors"] = [float(x) for x in np.asarray(rope_freqs.data).ravel()]
        return ModelConfig(
            architecture=arch,  # type: ignore[arg-type]
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=int(get("feed_forward_length")),
            num_layers=int(get("block_count")),
            num_heads=num_heads,
            num_kv_heads=int(get("attention.head_count_kv", num_heads)),
            head_dim=int(get("attention.key_length", hidden // num_heads)),
            max_position_embeddings=int(get("context_length", 2048)),
            rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
            rope_theta=float(get("rope.freq_base", 10000.0)),
            attention_bias="blk.0.attn_q.bias" in names,
            tie_word_embeddings="output.weight" not in names,
            extra=extra,
        )

    def tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield (HF name, float32 tensor) for every weight, dequantizing one at a time."""
        from gguf.quants import dequantize

        for tensor in self.reader.tensors:
            name = self._hf_name(tensor.name)
            if name is None:
                continue
            array = dequantize(tensor.data, tensor.tensor_type)
            weight = torch.from_numpy(np.array(array, dtype=np.float32, order="C"))
            yield name, self._undo_rope_permutation(name, weight)

    def _hf_name(self, gguf_name: str) -> str | None:
        if gguf_name in _GLOBAL_NAMES:
            return _GLOBAL_NAMES[gguf_name]
        match = _BLOCK.fullmatch(gguf_name)
        if match is None:
            return None  # e.g. rope_freqs.weight, already folded into the config
        suffix = _LAYER_NAMES.get(match.group(2))
        return None if suffix is None else f"model.layers.{match.group(1)}.{suffix}"

    def _undo_rope_permutation(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        # llama.cpp's converter reorders Q/K rows of "llama" models from the rotate-half
        # layout to interleaved pairs; Qwen2 files are written unpermuted.
        if self.config.architecture != "llama":
            return weight
        if name.endswith("q_proj.weight"):
            heads = self.config.num_heads
        elif name.endswith("k_proj.weight"):
            heads = self.config.num_kv_heads
        else:
            return weight
        rows = weight.shape[0]
        return (
            weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:])
            .transpose(1, 2)
            .reshape(weight.shape)
        )
