"""Quantized K/V: sizes against the targets, round-trip error, shapes and validation."""

from __future__ import annotations

import pytest
import torch

from roost.kvcache.quantize import QuantizedKV, dequantize, from_parts, quantize

SHAPE = (30, 256, 2, 3, 64)  # SmolLM2-135M: layers, tokens, K/V, kv heads, head dim


def kv_like_a_model(shape: tuple[int, ...] = SHAPE, dtype: torch.dtype = torch.float32):
    generator = torch.Generator().manual_seed(0)
    kv = torch.randn(shape, generator=generator)
    kv[..., 0, :, 5] *= 12  # an outlier key channel, as real models have
    return kv.to(dtype)


def fp16_bytes_per_token(shape: tuple[int, ...]) -> int:
    layers, _, two, heads, dim = shape
    return layers * two * heads * dim * 2


@pytest.mark.parametrize(
    ("scheme", "max_ratio", "max_relative_error"),
    [("none", 2.0, 0.0), ("int8", 0.55, 0.02), ("int4", 0.30, 0.15)],
)
def test_round_trip_size_and_error(scheme: str, max_ratio: float, max_relative_error: float):
    kv = kv_like_a_model()
    q = quantize(kv, scheme)  # type: ignore[arg-type]
    ratio = q.nbytes / q.num_tokens / fp16_bytes_per_token(SHAPE)
    assert ratio <= max_ratio
    back = dequantize(q)
    assert back.shape == kv.shape and back.dtype == kv.dtype
    error = ((back - kv).norm() / kv.norm()).item()
    assert error <= max_relative_error
    if scheme != "none":
        assert error > 0  # it really is compressed


def test_int8_targets_are_met_exactly():
    q = quantize(kv_like_a_model(), "int8")
    # Per head and token: 64 + 64 * 2 / 16 key bytes (a scale per channel and block), 64 + 2 values.
    assert q.nbytes / q.num_tokens / fp16_bytes_per_token(SHAPE) == pytest.approx(69 / 128)
    q4 = quantize(kv_like_a_model(), "int4")
    assert q4.nbytes / q4.num_tokens / fp16_bytes_per_token(SHAPE) == pytest.approx(36 / 128)


def test_quantize_leaves_its_input_alone():
    kv = kv_like_a_model()
    before = kv.clone()
    for scheme in ("int8", "int4"):
        quantize(kv, scheme)  # type: ignore[arg-type]
    assert torch.equal(kv, before)


@pytest.mark.parametrize("scheme", ["none", "int8", "int4"])
def test_bfloat16_kv_comes_back_in_any_dtype(scheme: str):
    kv = kv_like_a_model((2, 5, 2, 3, 64), torch.bfloat16)
    q = quantize(kv, scheme)  # type: ignore[arg-type]
    assert dequantize(q).dtype == torch.bfloat16
    assert dequantize(q, torch.float32).dtype == torch.float32


@pytest.mark.parametrize("dim", [48, 100, 128])
def test_int4_head_dims_not_a_multiple_of_the_group(dim: int):
    kv = kv_like_a_model((2, 7, 2, 2, dim))
    back = dequantize(quantize(kv, "int4"))
    assert back.shape == kv.shape
    assert ((back - kv).norm() / kv.norm()).item() < 0.15


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_zeros_and_empty_caches(scheme: str):
    zeros = torch.zeros(2, 3, 2, 3, 64)
    assert torch.equal(dequantize(quantize(zeros, scheme)), zeros)  # type: ignore[arg-type]
    empty = quantize(torch.zeros(2, 0, 2, 3, 64), scheme)  # type: ignore[arg-type]
    assert empty.num_tokens == 0 and dequantize(empty).shape == (2, 0, 2, 3, 64)


@pytest.mark.parametrize("scheme", ["none", "int8", "int4"])
def test_from_parts_rebuilds_and_validates(scheme: str):
    q = quantize(kv_like_a_model((2, 70, 2, 3, 64)), scheme)  # type: ignore[arg-type]
    rebuilt = from_parts(q.scheme, q.shape, q.dtype, dict(q.parts))
    assert torch.equal(dequantize(rebuilt), dequantize(q))
    name = next(iter(q.parts))
    with pytest.raises(ValueError, match="part"):
        from_parts(q.scheme, q.shape, q.dtype, {**q.parts, name: q.parts[name].reshape(-1)})
    with pytest.raises(ValueError, match="parts are"):
        from_parts(q.scheme, q.shape, q.dtype, {})
    with pytest.raises(ValueError, match="shape"):
        from_parts(q.scheme, (2, 70, 3, 3, 64), q.dtype, dict(q.parts))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="L, T, 2, H, D"):
        quantize(torch.zeros(2, 3, 4), "int8")
    with pytest.raises(ValueError, match="unknown"):
        quantize(torch.zeros(1, 1, 2, 1, 4), "int3")  # type: ignore[arg-type]


def test_a_quantized_kv_reports_its_size():
    q = QuantizedKV("none", (1, 3, 2, 1, 4), torch.float32, {"kv": torch.zeros(1, 3, 2, 1, 4)})
    assert q.num_tokens == 3 and q.nbytes == 3 * 2 * 4 * 4


def test_int4_keys_past_the_last_full_group_stay_in_float16():
    kv = kv_like_a_model((2, 70, 2, 3, 64))
    back = dequantize(quantize(kv, "int4"))
    tail = kv[:, 64:, 0]
    assert torch.equal(back[:, 64:, 0], tail.half().float())
    assert not torch.equal(back[:, :64, 0], kv[:, :64, 0].half().float())
    assert ((back - kv).norm() / kv.norm()).item() < 0.15


def test_int8_keys_keep_ordinary_channels_precise_beside_an_outlier_channel():
    kv = kv_like_a_model()  # key channel 5 is 12x larger than the others
    back = dequantize(quantize(kv, "int8"))
    others = [c for c in range(SHAPE[-1]) if c != 5]
    keys, restored = kv[:, :, 0][..., others], back[:, :, 0][..., others]
    # A scale per token would be set by the outlier: ~0.027 here.
    assert ((restored - keys).norm() / keys.norm()).item() < 0.008


@pytest.mark.parametrize("tokens", [1, 15, 17, 40])
def test_int8_caches_that_end_inside_a_key_group(tokens: int):
    kv = kv_like_a_model((2, tokens, 2, 3, 64))
    back = dequantize(quantize(kv, "int8"))
    assert ((back - kv).norm() / kv.norm()).item() < 0.02
