"""Choose, per projection, the exact float path or a weight-only int4/int8 kernel.

Runs on the float32 weights, before they are cast to the compute dtype: whether a matrix
sits on a 4-bit grid can only be seen at full precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from roost.engine.linear import Linear
from roost.engine.model import LlamaModel
from roost.engine.weight_quant import (
    WeightQuantization,
    int4_supported,
    int8_supported,
    is_on_int4_grid,
    pack_int4,
    pack_int8,
)
from roost.observe.logging import get_logger

log = get_logger("roost.engine")


@dataclass(slots=True)
class QuantizationReport:
    """What each projection multiplies with, for logs and the benchmark."""

    mode: WeightQuantization
    int4: int = 0
    int8: int = 0
    exact: int = 0
    head: str = "exact"
    prefill: str = "compute dtype"  # or "float32" (see prefill_precision)
    reasons: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return (
            f"weights: {self.int4} int4, {self.int8} int8, {self.exact} exact projections; "
            f"head {self.head} (mode {self.mode}); prefill in {self.prefill}"
        )


def quantize_model(
    model: LlamaModel, mode: WeightQuantization, device: torch.device, dtype: torch.dtype
) -> QuantizationReport:
    """Swap projections to packed int4/int8 where ``mode`` asks and the kernels exist.

    ``auto`` quantizes only on CPUs computing in bf16 and only matrices already on a 4-bit
    grid (nothing lost beyond the file's own rounding); float32 engines keep the exact
    path, so they still match the reference token for token.
    """
    report = QuantizationReport(mode)
    projections = [
        linear
        for layer in model.decoder_layers()
        for linear in (
            layer.self_attn.qkv_proj,
            layer.self_attn.o_proj,
            layer.mlp.gate_up_proj,
            layer.mlp.down_proj,
        )
    ]
    if mode == "none" or (mode == "auto" and (device.type != "cpu" or dtype != torch.bfloat16)):
        report.exact = len(projections)
        return report
    with torch.no_grad():
        for linear in projections:
            _quantize_projection(linear, mode, device, report)
        # The head is quantized only beside a quantized body: a float model keeps its
        # logits exact in every mode but an explicit one.
        # Only an explicit mode packs the head (4 bits even for int8: PyTorch's int8 kernel
        # reads a wide matrix no faster than bf16). In auto it stays float: a Q8_0 head
        # rounded to 4 bits raises perplexity ~4 % although the best logits are recomputed.
        head = model.lm_head
        if mode != "auto" and int4_supported(device, head.weight.shape[1]):
            if model.head_fp32 is None:  # the exact copy that refines the best logits
                model.head_fp32 = head.weight.detach().float().clone()
            head.use_quantized(pack_int4(head.weight))
            report.head = "int4"
    if report.reasons:
        log.info("weight quantization fell back", reasons=sorted(set(report.reasons)))
    return report


def _quantize_projection(
    linear: Linear, mode: WeightQuantization, device: torch.device, report: QuantizationReport
) -> None:
    weight = linear.weight
    if mode == "int8":
        if int8_supported(device):
            linear.use_quantized(pack_int8(weight))
            report.int8 += 1
            return
        report.reasons.append(f"no int8 kernel on {device.type}")
    elif not int4_supported(device, weight.shape[1]):
        report.reasons.append(f"no int4 kernel on {device.type} for {weight.shape[1]} inputs")
    elif mode == "int4" or is_on_int4_grid(weight):
        linear.use_quantized(pack_int4(weight))
        report.int4 += 1
        return
    else:
        report.reasons.append("weights not on a 4-bit grid")
    report.exact += 1
