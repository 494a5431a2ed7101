"""Whether prefill matmuls run on a float32 copy of the weights.

A prefill chunk multiplies hundreds of rows by every weight matrix: arithmetic, not
memory, bounds it. On x86 CPUs with AMX, oneDNN's bf16 GEMM is the fastest path. Without
AMX (AVX512-BF16 only, or AVX2), MKL's float32 GEMM measured about twice oneDNN's bf16
GEMM on prefill-sized matmuls on this project's Xeon (docs/engine.md), so ``auto`` keeps a
float32 copy for them — when that copy is a small share of the memory, since it costs
4 bytes per weight on top of the decode weights.
"""

from __future__ import annotations

from typing import Literal

import torch

from roost.engine.memory_budget import available_memory_bytes

PrefillDtype = Literal["auto", "float32", "compute"]
# ``auto`` keeps the float32 copy only while it takes at most this share of free memory.
MAX_MEMORY_SHARE = 0.1


def cpu_has_amx() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe()) if probe is not None else False


def wants_float32_prefill(
    mode: PrefillDtype, device: torch.device, dtype: torch.dtype, float32_bytes: int
) -> bool:
    """True when prefill matmuls should use float32 weights of ``float32_bytes`` in all."""
    if mode == "compute" or device.type != "cpu" or dtype == torch.float32:
        return False  # a float32 engine already multiplies in float32
    if mode == "float32":
        return True
    return not cpu_has_amx() and float32_bytes <= MAX_MEMORY_SHARE * available_memory_bytes()
