"""Weight-only int4/int8 matmuls for CPU decode, through PyTorch's own packed kernels.

A decode step multiplies one row per sequence by every weight matrix, so its time is the
time to read the weights. Reading them as 4-bit (group-wise scale and zero) or 8-bit
(per-row scale) integers instead of bf16 cuts the bytes per step 2-4×. PyTorch ships CPU
kernels for both (``_weight_int4pack_mm_for_cpu``, ``_weight_int8pack_mm``); they are fast
with bf16 activations only, so inputs are cast to bf16 around them.

``auto`` picks 4-bit only where it loses nothing: for a matrix whose values already sit on
a 4-bit grid per group of 32 (a Q4_0/Q4_1 GGUF, like the bundled SmolLM2), the packed
form reproduces the file's weights up to bf16 rounding of each group's scale and zero —
the same rounding the bf16 path applies to every weight. The vocabulary head stays in
float in ``auto``; explicit modes pack it in 4 bits, and the engine then recomputes the
best logits in float32 from an exact copy (see ``LlamaModel.logits``), so greedy choices
keep their true order while the tail of the distribution sees the rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

WeightQuantization = Literal["auto", "none", "int8", "int4"]
GROUP_SIZE = 32  # GGUF Q4_0/Q4_1 quantize groups of 32 along the input dimension
_INNER_K_TILES = 2
# Relative to a group's step: a matrix is "on the grid" when every value is this close.
_GRID_TOLERANCE = 1e-3


def int4_supported(device: torch.device, in_features: int) -> bool:
    """True when the CPU int4 kernel can take a matrix with ``in_features`` inputs."""
    return (
        device.type == "cpu"
        and hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu")
        and hasattr(torch.ops.aten, "_convert_weight_to_int4pack_for_cpu")
        and in_features % GROUP_SIZE == 0
    )


def int8_supported(device: torch.device) -> bool:
    return device.type == "cpu" and hasattr(torch.ops.aten, "_weight_int8pack_mm")


@dataclass(frozen=True, slots=True)
class Int4Weight:
    """A [N, K] matrix as packed 4-bit codes plus a (scale, zero) pair per group of 32."""

    packed: torch.Tensor  # uint8, the kernel's layout
    scales_zeros: torch.Tensor  # [K / 32, N, 2] bf16
    out_features: int

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """x [M, K] (any float dtype) times the matrix transposed: [M, N] bf16."""
        return torch.ops.aten._weight_int4pack_mm_for_cpu(
            x.to(torch.bfloat16), self.packed, GROUP_SIZE, self.scales_zeros
        )

    @property
    def nbytes(self) -> int:
        return self.packed.nbytes + self.scales_zeros.nbytes


@dataclass(frozen=True, slots=True)
class Int8Weight:
    """A [N, K] matrix as int8 with one bf16 scale per output row."""

    weight: torch.Tensor  # [N, K] int8
    scales: torch.Tensor  # [N] bf16

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int8pack_mm(x.to(torch.bfloat16), self.weight, self.scales)

    @property
    def nbytes(self) -> int:
        return self.weight.nbytes + self.scales.nbytes


QuantizedWeight = Int4Weight | Int8Weight


def int4_codes(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric 4-bit codes [N, K] and per-group step and minimum [N, K / 32] (float32).

    As GGUF's Q4_1: step = (max - min) / 15, code = round((w - min) / step).
    """
    n, k = weight.shape
    groups = weight.float().reshape(n, k // GROUP_SIZE, GROUP_SIZE)
    low = groups.amin(-1)
    step = (groups.amax(-1) - low) / 15
    step = torch.where(step > 0, step, torch.ones_like(step))  # a constant group: code 0
    codes = ((groups - low[..., None]) / step[..., None]).round_().clamp_(0, 15)
    return codes.reshape(n, k), step, low


def is_on_int4_grid(weight: torch.Tensor) -> bool:
    """True when 4-bit codes reproduce ``weight`` (it was 4-bit quantized in groups of 32)."""
    n, k = weight.shape
    if k % GROUP_SIZE:
        return False
    codes, step, low = int4_codes(weight)
    restored = codes.view(n, -1, GROUP_SIZE) * step[..., None] + low[..., None]
    error = (restored - weight.float().view(n, -1, GROUP_SIZE)).abs().amax(-1)
    return bool((error <= _GRID_TOLERANCE * step).all())


def pack_int4(weight: torch.Tensor) -> Int4Weight:
    """Pack a float [N, K] matrix for ``_weight_int4pack_mm_for_cpu`` (K a multiple of 32)."""
    n, _ = weight.shape
    codes, step, low = int4_codes(weight)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
        codes.to(torch.int32).contiguous(), _INNER_K_TILES
    )
    # The kernel computes (code - 8) * scale + zero.
    zero = low + 8 * step
    scales_zeros = torch.stack((step, zero), dim=-1).transpose(0, 1).contiguous()
    return Int4Weight(packed, scales_zeros.to(torch.bfloat16), n)


def pack_int8(weight: torch.Tensor) -> Int8Weight:
    """Symmetric per-row int8: scale = max |w| / 127."""
    w = weight.float()
    scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127
    codes = (w / scales[:, None]).round_().clamp_(-127, 127).to(torch.int8)
    return Int8Weight(codes.contiguous(), scales.to(torch.bfloat16))
