"""A Llama-family decoder (Llama 2/3, SmolLM2, Qwen2, Mistral) that reads and writes a paged KV cache.

The model holds weights only; serving state (the KV pool tensor, block tables) arrives with
each call in an :class:`AttentionBatch`, so one model object serves any batch shape.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from roost.engine.attention import AttentionBatch, paged_attention
from roost.engine.linear import Linear
from roost.engine.model_config import ModelConfig
from roost.engine.rope import apply_rope, rope_tables

# Recomputed exactly from a float32 head when the head runs in bf16 or 4 bits.
_NUM_REFINED_LOGITS = 32


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer_index: int) -> None:
        super().__init__()
        self.layer_index = layer_index
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = config.head_dim
        qkv_out = (config.num_heads + 2 * config.num_kv_heads) * config.head_dim
        # q, k and v share one matmul: fewer, larger kernels are faster on a CPU.
        self.qkv_proj = Linear(config.hidden_size, qkv_out, bias=config.attention_bias)
        self.o_proj = Linear(config.num_heads * config.head_dim, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, batch: AttentionBatch) -> torch.Tensor:
        b, s, _ = x.shape
        h, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        qkv = self.qkv_proj(x).view(b, s, h + 2 * hkv, d)  # [B, S, H + 2Hkv, D]
        # Rotate in float32: bf16 rounding of the rotation drifts at long positions.
        qk = apply_rope(qkv[:, :, : h + hkv].float(), batch.cos, batch.sin).to(qkv.dtype)
        q = qk[:, :, :h]
        kv = torch.cat((qk[:, :, h:], qkv[:, :, h + hkv :]), dim=2)  # [B, S, 2Hkv, D]
        # K and V of a slot sit side by side, so one scatter and one gather serve both.
        cache = batch.kv_cache[self.layer_index]  # [N, 2, Hkv, D]
        cache.index_copy_(0, batch.write_slots, kv.view(b * s, 2, hkv, d))
        return self.o_proj(paged_attention(q, cache, batch))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.gate_up_proj = Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.down_proj = Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).split(self.intermediate_size, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class RMSNorm(nn.Module):
    """Normalises the float32 residual stream; emits ``out_dtype`` for the next matmul."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))
        self.out_dtype = torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps).to(self.out_dtype)


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, layer_index: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config, layer_index)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, batch: AttentionBatch) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), batch)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    """Token ids in, hidden states out; :meth:`logits` projects selected rows onto the vocab."""

    rope_cos: torch.Tensor
    rope_sin: torch.Tensor
    head_fp32: torch.Tensor | None = None  # [V, H] float32 copy used to refine top logits
    prefill_float32 = False  # prefill chunks multiply and attend in float32 (weights.py)

    def __init__(self, config: ModelConfig, max_positions: int) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
        cos, sin = rope_tables(config, max_positions)
        self.register_buffer("rope_cos", cos, persistent=False)  # [P, D]
        self.register_buffer("rope_sin", sin, persistent=False)  # [P, D]

    def rope_for(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """cos/sin rows for ``positions`` [B, S], shaped [B, S, 1, D] for broadcasting."""
        cos = self.rope_cos[positions].unsqueeze(2).to(dtype)
        sin = self.rope_sin[positions].unsqueeze(2).to(dtype)
        return cos, sin

    def prepack_linears(self) -> None:
        """Prepack every projection for oneDNN (CPU bf16); weights become opaque afterwards."""
        for module in self.modules():
            if isinstance(module, Linear):
                module.prepack()

    def weight_bytes_per_token(self) -> int:
        """Weight bytes a decode step reads (every projection and the head), for rooflines."""
        return sum(m.weight_bytes() for m in self.modules() if isinstance(m, Linear))

    def decoder_layers(self) -> list[DecoderLayer]:
        return [cast(DecoderLayer, layer) for layer in self.layers]

    def set_compute_dtype(self, dtype: torch.dtype) -> None:
        """Matmuls run in ``dtype``; norms, rope and the residual stream stay float32.

        A float32 residual stream (as llama.cpp keeps) is what lets bf16 weights track the
        float32 reference closely; it costs only elementwise work on [B, S, hidden].
        """
        self.to(dtype)
        for module in self.modules():
            if isinstance(module, RMSNorm):
                module.float()
                module.out_dtype = dtype

    def forward(self, input_ids: torch.Tensor, batch: AttentionBatch) -> torch.Tensor:
        x = self.embed_tokens(input_ids).float()  # [B, S, H] residual stream in float32
        for layer in self.layers:
            x = layer(x, batch)
        return x  # [B, S, H] before the final norm

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[N, H] hidden rows to [N, V] float32 logits.

        With a low-precision head, the best few logits are recomputed in float32: bf16 rounds
        the top logits of a confident model onto the same value (steps of 0.125 near 25),
        which would turn greedy choices between close candidates into coin flips.
        """
        normed = F.rms_norm(hidden, (hidden.shape[-1],), self.norm.weight, self.norm.eps)
        if self.head_fp32 is None:
            return self.lm_head(normed).float()
        logits = self.lm_head(normed.to(self.norm.out_dtype)).float()  # [N, V]
        candidates = logits.topk(_NUM_REFINED_LOGITS, dim=-1).indices  # [N, K]
        rows = self.head_fp32[candidates]  # [N, K, H]
        exact = torch.einsum("nkh,nh->nk", rows, normed)  # [N, K]
        return logits.scatter_(1, candidates, exact)
