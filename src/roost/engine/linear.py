"""A Linear layer that can prepack its weight for oneDNN's bf16 kernels on CPUs, or hold
it as packed int4/int8 codes (``weight_quant``).

Plain ``F.linear`` in bf16 re-lays-out the weight on every call; at decode batch sizes that
costs more than the multiplication. Prepacking once makes small-batch bf16 matmuls ~2-3×
faster on CPUs with AVX512-BF16/AMX (measured on the benchmark machine).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from roost.engine.weight_quant import QuantizedWeight


def can_prepack(device: torch.device, dtype: torch.dtype) -> bool:
    """True when oneDNN's prepacked linear is available for this device and dtype."""
    return (
        device.type == "cpu"
        and dtype == torch.bfloat16
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


# Up to this many rows (decode of a few sequences) a matmul is bound by reading the
# weights and PyTorch's int4 kernel is ~5x faster than oneDNN's bf16 one at one row; from
# 5 rows on it switches to a path no faster than bf16 GEMM (measured on the dev machine).
QUANTIZED_MAX_ROWS = 4
# From this many rows on (prefill chunks) a matmul is bound by arithmetic, not by reading
# the weights; there a float32 copy of the weight may be faster (see ``keep_float32_wide``).
WIDE_MIN_ROWS = 64


class Linear(nn.Linear):
    """``nn.Linear`` plus :meth:`prepack`; after packing the plain weight is released."""

    _packed: Any = None
    _quantized: QuantizedWeight | None = None
    _wide: torch.Tensor | None = None  # float32 weight for wide (prefill) matmuls
    _wide_bias: torch.Tensor | None = None
    quantized_max_rows = QUANTIZED_MAX_ROWS  # benchmarks raise it to score the int path

    @property
    def is_quantized(self) -> bool:
        return self._quantized is not None

    def weight_bytes(self) -> int:
        """Bytes of weight one multiplication reads."""
        if self._quantized is not None:
            return self._quantized.nbytes
        return self.in_features * self.out_features * self.weight.element_size()

    def use_quantized(self, weight: QuantizedWeight) -> None:
        """Multiply small batches (decode) by ``weight`` from now on.

        The float weight stays for large batches (prefill): there oneDNN's bf16 GEMM beats
        the int4 kernel, and reading the weights once per chunk costs nothing.
        """
        self._quantized = weight

    def keep_float32_wide(self) -> None:
        """Multiply wide inputs (``WIDE_MIN_ROWS`` rows or more) in float32 from now on.

        Call while the weight is still float32. On CPUs without AMX, MKL's float32 GEMM
        runs prefill-sized matmuls about twice as fast as oneDNN's bf16 one (AVX512-BF16
        alone does not make up for bf16's less efficient kernels there), and float32 is
        the exact path besides.
        """
        self._wide = self.weight.detach().float().clone().contiguous()
        if self.bias is not None:
            self._wide_bias = self.bias.detach().float().clone()

    def prepack(self) -> None:
        with torch.no_grad():
            self._packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), None)
        # The packed copy is all that is used from now on; drop the original's storage.
        self.weight = nn.Parameter(torch.empty(0, dtype=self.weight.dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._wide is not None and x.numel() >= WIDE_MIN_ROWS * x.shape[-1]:
            return F.linear(x.float(), self._wide, self._wide_bias).to(x.dtype)
        if self._quantized is not None and x.numel() <= self.quantized_max_rows * x.shape[-1]:
            flat = self._quantized.matmul(x.reshape(-1, x.shape[-1])).to(x.dtype)
            if self.bias is not None:
                flat = flat + self.bias.to(x.dtype)
            return flat.view(*x.shape[:-1], flat.shape[-1])
        if self._packed is None:
            return F.linear(x, self.weight, self.bias)
        flat = x.reshape(-1, x.shape[-1])
        out = torch.ops.mkldnn._linear_pointwise(flat, self._packed, self.bias, "none", [], "")
        return out.view(*x.shape[:-1], out.shape[-1])
