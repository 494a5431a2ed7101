"""Prefill matmuls on a float32 copy of the weights: when the engine keeps one, and that
wide inputs (prefill chunks) use it while decode-sized ones keep the compute dtype."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from roost.engine.linear import WIDE_MIN_ROWS, Linear
from roost.engine.prefill_precision import cpu_has_amx, wants_float32_prefill
from roost.errors import InvalidRequest

CPU = torch.device("cpu")


def test_modes_choose_the_float32_copy_as_documented() -> None:
    small = 1 << 20
    assert wants_float32_prefill("float32", CPU, torch.bfloat16, small)
    assert not wants_float32_prefill("compute", CPU, torch.bfloat16, small)
    # A float32 engine already multiplies in float32; CUDA keeps its own kernels.
    assert not wants_float32_prefill("float32", CPU, torch.float32, small)
    assert not wants_float32_prefill("auto", torch.device("cuda"), torch.bfloat16, small)
    # auto never takes a copy larger than a tenth of the memory; float32 refuses one that
    # cannot fit at all, naming both sizes.
    assert not wants_float32_prefill("auto", CPU, torch.bfloat16, 2 << 30, 10 << 30)
    # With AMX, bf16 prefill is the faster one.
    fits = wants_float32_prefill("auto", CPU, torch.bfloat16, 1 << 30, 10 << 30)
    assert fits == (not cpu_has_amx())
    with pytest.raises(InvalidRequest, match=r"needs 12\.0 GB .* only 10\.0 GB") as refused:
        wants_float32_prefill("float32", CPU, torch.bfloat16, 12 << 30, 10 << 30)
    assert refused.value.param == "engine.prefill_dtype"


def test_wide_inputs_multiply_in_float32_and_narrow_ones_in_the_compute_dtype() -> None:
    torch.manual_seed(0)
    linear = Linear(64, 32, bias=True)
    exact_weight, exact_bias = linear.weight.detach().clone(), linear.bias.detach().clone()
    linear.keep_float32_wide()
    linear.to(torch.bfloat16)
    wide = torch.randn(WIDE_MIN_ROWS, 64).bfloat16()
    expected = F.linear(wide.float(), exact_weight, exact_bias)
    # float32 products of bf16 inputs, rounded once to bf16 at the end
    torch.testing.assert_close(linear(wide).float(), expected.bfloat16().float())
    narrow = wide[:4]
    bf16_result = F.linear(narrow, linear.weight, linear.bias)
    assert torch.equal(linear(narrow), bf16_result)
