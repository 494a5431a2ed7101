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

from roost.engine.memory_budget import GB, available_memory_bytes
from roost.errors import InvalidRequest

PrefillDtype = Literal["auto", "float32", "compute"]
# ``auto`` keeps the float32 copy only while it takes at most this share of free memory.
MAX_MEMORY_SHARE = 0.1


def cpu_has_amx() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe()) if probe is not None else False


def wants_float32_prefill(
    mode: PrefillDtype,
    device: torch.device,
    dtype: torch.dtype,
    float32_bytes: int,
    available_bytes: int | None = None,
) -> bool:
    """True when prefill matmuls should use float32 weights of ``float32_bytes`` in all.

    An explicit ``float32`` whose copy cannot fit in the available memory is refused,
    naming both numbers, rather than left to the kernel's OOM killer.
    """
    if mode == "compute" or device.type != "cpu" or dtype == torch.float32:
        return False  # a float32 engine already multiplies in float32
    available = available_memory_bytes() if available_bytes is None else available_bytes
    if mode == "float32":
        if float32_bytes > available:
            raise InvalidRequest(
                f"engine.prefill_dtype = float32 needs {float32_bytes / GB:.1f} GB for a"
                f" float32 copy of the weights but only {available / GB:.1f} GB of memory"
                " is available; use auto or compute",
                param="engine.prefill_dtype",
            )
        return True
    return not cpu_has_amx() and float32_bytes <= MAX_MEMORY_SHARE * available
