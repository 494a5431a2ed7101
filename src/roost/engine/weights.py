"""Put a Hugging Face named state dict into :class:`LlamaModel`, fusing q/k/v and gate/up."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from roost.engine.linear import Linear, can_prepack
from roost.engine.model import LlamaModel
from roost.engine.model_config import ModelConfig
from roost.engine.prefill_precision import PrefillDtype, wants_float32_prefill
from roost.engine.quantize_model import QuantizationReport, quantize_model
from roost.engine.rope import rope_tables
from roost.engine.weight_quant import WeightQuantization
from roost.errors import InvalidRequest


def build_model(
    config: ModelConfig,
    state: Mapping[str, torch.Tensor],
    *,
    dtype: torch.dtype,
    device: torch.device,
    max_positions: int,
    quantization: WeightQuantization = "none",
    prefill_dtype: PrefillDtype = "compute",
) -> tuple[LlamaModel, QuantizationReport]:
    """Create the model on ``device`` in ``dtype`` with weights from ``state`` (HF names),
    its projections quantized as ``quantization`` asks (see ``quantize_model``) and, where
    ``prefill_dtype`` asks, a float32 copy for prefill (see ``prefill_precision``)."""
    with torch.device("meta"):
        model = LlamaModel(config, max_positions)
    model = model.to_empty(device=device)

    def take(name: str) -> torch.Tensor:
        if name not in state:
            raise InvalidRequest(f"checkpoint is missing tensor {name}", param="model")
        return state[name]

    with torch.no_grad():
        model.embed_tokens.weight.copy_(take("model.embed_tokens.weight"))
        model.norm.weight.copy_(take("model.norm.weight"))
        head = state.get("lm_head.weight")
        if head is None or config.tie_word_embeddings:
            head = take("model.embed_tokens.weight")
        model.lm_head.weight.copy_(head)
        for i, layer in enumerate(model.decoder_layers()):
            prefix = f"model.layers.{i}."
            attn = layer.self_attn
            attn.qkv_proj.weight.copy_(
                torch.cat([take(f"{prefix}self_attn.{p}_proj.weight") for p in "qkv"])
            )
            if attn.qkv_proj.bias is not None:
                attn.qkv_proj.bias.copy_(
                    torch.cat([take(f"{prefix}self_attn.{p}_proj.bias") for p in "qkv"])
                )
            attn.o_proj.weight.copy_(take(f"{prefix}self_attn.o_proj.weight"))
            layer.mlp.gate_up_proj.weight.copy_(
                torch.cat(
                    [take(f"{prefix}mlp.gate_proj.weight"), take(f"{prefix}mlp.up_proj.weight")]
                )
            )
            layer.mlp.down_proj.weight.copy_(take(f"{prefix}mlp.down_proj.weight"))
            layer.input_layernorm.weight.copy_(take(f"{prefix}input_layernorm.weight"))
            layer.post_attention_layernorm.weight.copy_(
                take(f"{prefix}post_attention_layernorm.weight")
            )
    if dtype != torch.float32:
        model.head_fp32 = model.lm_head.weight.detach().float().clone()
    report = quantize_model(model, quantization, device, dtype)
    projections = [m for m in model.modules() if isinstance(m, Linear) and m is not model.lm_head]
    float32_bytes = sum(4 * m.in_features * m.out_features for m in projections)
    if wants_float32_prefill(prefill_dtype, device, dtype, float32_bytes):
        for linear in projections:  # the head multiplies one row per prompt: not wide
            linear.keep_float32_wide()
        model.prefill_float32 = True
        report.prefill = "float32"
    model.set_compute_dtype(dtype)
    # Buffers were created on meta; rope tables are computed now, in float32.
    cos, sin = rope_tables(config, max_positions)
    model.rope_cos = cos.to(device)
    model.rope_sin = sin.to(device)
    if can_prepack(device, dtype):
        model.prepack_linears()
    return model.eval().requires_grad_(False), report
