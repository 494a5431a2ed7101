"""Quantized KV tensors: compact copies of a K/V cache [L, T, 2, H, D] for memory and disk.

Schemes (bytes per token relative to float16, for SmolLM2's D = 64):

- ``none``: the tensor as is, in its own dtype.
- ``int8``: symmetric 8 bits with float16 scales: keys per channel over each 16 tokens
  (one pool block), values per (token, head) over D: 0.54x.
- ``int4``: asymmetric 4 bits, two values per byte, a float16 scale and minimum per group
  of 64: values per token (64 along D), keys per channel (64 tokens along T, as in KIVI),
  the last T mod 64 keys kept in float16: 0.28x once a cache is a few hundred tokens long.

Why keys are quantized per channel: a few key channels carry outliers, which wreck a
per-token scale. Measured on the bundled SmolLM2-135M in float32 with
``benchmarks/kv_quality.py`` (chat prompts of ~180 tokens, 32 greedy tokens each from the
round-tripped K/V of the prompt; perplexity of the second half of a fixed text given the
round-tripped first half). Three prompt sets of 20 (the library assistant of
``kv_quality.QUESTIONS``, the same questions after a story, after a coding system prompt):

| variant | continuations unchanged (library / story / coder) | perplexity |
|---|---|---|
| int8, keys and values per token | 17 / 20 / 13 of 20 (83 %) | +0.20 % |
| int8, keys per channel over 16 tokens (chosen) | 20 / 18 / 18 of 20 (93 %) | +0.11 % |
| int8, keys per channel over 64 tokens | 17 of 20 (library) | +0.14 % |
| int4, keys and values per token | 1 of 20 (library) | -0.3 % |
| int4, keys per channel over 64 tokens (chosen) | 7 / 10 / 7 of 20 (40 %) | +0.7 % |

Greedy decoding of a 135M model is full of near-ties, so single sets of 20 are noisy
(float16 rounding of K/V changes none of the 60). (On shorter prompts a 64x64 Hadamard
rotation before per-token int4 recovered less than per-channel keys did.)

Everything is vectorised torch, in cache-sized chunks (one pass over memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

Scheme = Literal["none", "int8", "int4"]
SCHEMES: tuple[Scheme, ...] = get_args(Scheme)
INT4_GROUP = 64  # values sharing one scale and minimum, along D
INT8_KEY_GROUP = 16  # tokens whose keys share one scale per channel (one pool block)
_INT8_MAX = 127
_INT4_LEVELS = 15
_TINY = torch.finfo(torch.float16).tiny  # keeps all-zero rows finite
_CHUNK_ROWS = 4096  # rows of D values processed at once (1 MiB of float32 for D = 64)


@dataclass(frozen=True, slots=True)
class QuantizedKV:
    """A quantized K/V cache; ``parts`` are contiguous CPU tensors, exactly what is saved."""

    scheme: Scheme
    shape: tuple[int, ...]  # [L, T, 2, H, D] of the original
    dtype: torch.dtype  # of the original
    parts: dict[str, torch.Tensor]

    @property
    def num_tokens(self) -> int:
        return self.shape[1]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.parts.values())


def quantize(kv: torch.Tensor, scheme: Scheme) -> QuantizedKV:
    """Compress ``kv`` [L, T, 2, H, D] (float32, bfloat16 or float16) with ``scheme``."""
    if kv.dim() != 5 or kv.shape[2] != 2:
        raise ValueError(f"expected a K/V tensor [L, T, 2, H, D], got {list(kv.shape)}")
    shape = tuple(kv.shape)
    kv = kv.detach().to("cpu")
    if scheme == "none":
        parts = {"kv": kv.contiguous()}
    elif scheme == "int8":
        parts = _quantize_int8(kv)
    elif scheme == "int4":
        parts = _quantize_int4(kv)
    else:
        raise ValueError(f"unknown quantization scheme {scheme!r}; expected one of {SCHEMES}")
    return QuantizedKV(scheme, shape, kv.dtype, parts)


def dequantize(q: QuantizedKV, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The K/V tensor [L, T, 2, H, D] back, in ``dtype`` (default: the original dtype)."""
    dtype = dtype or q.dtype
    if q.scheme == "none":
        return q.parts["kv"].to(dtype)
    if q.scheme == "int8":
        return _dequantize_int8(q.parts, dtype)
    return _dequantize_int4(q.parts, q.shape[-1], dtype)


def from_parts(
    scheme: str, shape: tuple[int, ...], dtype: torch.dtype, parts: dict[str, torch.Tensor]
) -> QuantizedKV:
    """Rebuild a :class:`QuantizedKV` (after loading); ValueError unless every part fits."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantization scheme {scheme!r}")
    if len(shape) != 5 or shape[2] != 2 or any(n < 0 for n in shape):
        raise ValueError(f"bad K/V shape {list(shape)}")
    expected = expected_parts(scheme, shape, dtype)
    if set(parts) != set(expected):
        raise ValueError(f"{scheme} parts are {sorted(expected)}, got {sorted(parts)}")
    for name, (part_shape, part_dtype) in expected.items():
        part = parts[name]
        if tuple(part.shape) != part_shape or part.dtype != part_dtype:
            raise ValueError(
                f"part {name!r} is {part.dtype} {list(part.shape)}, "
                f"expected {part_dtype} {list(part_shape)}"
            )
    return QuantizedKV(scheme, tuple(shape), dtype, {k: v.contiguous() for k, v in parts.items()})


def expected_parts(
    scheme: Scheme, shape: tuple[int, ...], dtype: torch.dtype
) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of every part a scheme stores for a K/V tensor of ``shape``."""
    layers, tokens, _, heads, dim = shape
    if scheme == "none":
        return {"kv": (tuple(shape), dtype)}
    if scheme == "int8":
        groups = -(-tokens // INT8_KEY_GROUP)
        return {
            "k_q": ((layers, tokens, heads, dim), torch.int8),
            "k_scale": ((layers, groups, heads, dim), torch.float16),
            "v_q": ((layers, tokens, heads, dim), torch.int8),
            "v_scale": ((layers, tokens, heads, 1), torch.float16),
        }
    full = tokens // INT4_GROUP
    channels = (layers, full, heads, dim)
    per_token = (layers, tokens, heads, -(-dim // INT4_GROUP))
    return {
        "k_packed": ((layers, full, INT4_GROUP // 2, heads, dim), torch.uint8),
        "k_scale": (channels, torch.float16),
        "k_min": (channels, torch.float16),
        "k_tail": ((layers, tokens - full * INT4_GROUP, heads, dim), torch.float16),
        "v_packed": ((*per_token[:3], per_token[3] * INT4_GROUP // 2), torch.uint8),
        "v_scale": (per_token, torch.float16),
        "v_min": (per_token, torch.float16),
    }


def _quantize_int8(kv: torch.Tensor) -> dict[str, torch.Tensor]:
    layers, tokens, _, heads, dim = kv.shape
    groups = -(-tokens // INT8_KEY_GROUP)
    padding = groups * INT8_KEY_GROUP - tokens
    k_q = torch.empty(layers, tokens, heads, dim, dtype=torch.int8)
    k_scale = torch.empty(layers, groups, heads, dim, dtype=torch.float16)
    v_q = torch.empty(layers, tokens, heads, dim, dtype=torch.int8)
    v_scale = torch.empty(layers, tokens, heads, 1, dtype=torch.float16)
    for layer in range(layers):  # one layer at a time: intermediates stay small
        keys = kv[layer, :, 0].float()  # [T, H, D]; may be kv itself
        if padding:  # zeros change no group's largest magnitude
            keys = torch.cat((keys, keys.new_zeros(padding, heads, dim)))
        keys = keys.view(groups, INT8_KEY_GROUP, heads, dim)
        # Quantize with the scale as stored (float16), so dequantization sees the same grid.
        k_scale[layer] = keys.abs().amax(dim=1) / _INT8_MAX
        inverse = 1.0 / k_scale[layer].float().clamp_min(_TINY)
        grid = (keys * inverse.unsqueeze(1)).round_().clamp_(-_INT8_MAX, _INT8_MAX)
        k_q[layer] = grid.view(-1, heads, dim)[:tokens]
        values = kv[layer, :, 1].float()  # [T, H, D]
        v_scale[layer] = values.abs().amax(dim=-1, keepdim=True) / _INT8_MAX
        inverse = 1.0 / v_scale[layer].float().clamp_min(_TINY)
        v_q[layer] = (values * inverse).round_().clamp_(-_INT8_MAX, _INT8_MAX)
    return {"k_q": k_q, "k_scale": k_scale, "v_q": v_q, "v_scale": v_scale}


def _dequantize_int8(parts: dict[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    k_q, k_scale, v_q, v_scale = parts["k_q"], parts["k_scale"], parts["v_q"], parts["v_scale"]
    layers, tokens, heads, dim = k_q.shape
    out = torch.empty(layers, tokens, 2, heads, dim, dtype=dtype)
    scale_rows = torch.arange(tokens) // INT8_KEY_GROUP  # the group of each token
    for layer in range(layers):
        out[layer, :, 0] = k_q[layer].float().mul_(k_scale[layer].float()[scale_rows])
        out[layer, :, 1] = v_q[layer].float().mul_(v_scale[layer].float())
    return out


def _quantize_int4(kv: torch.Tensor) -> dict[str, torch.Tensor]:
    keys, values = kv[:, :, 0], kv[:, :, 1]  # [L, T, H, D] each
    full = keys.shape[1] // INT4_GROUP * INT4_GROUP
    packed, scale, low = _int4_per_token(values)
    return {
        **_int4_keys_per_channel(keys[:, :full]),
        "k_tail": keys[:, full:].to(torch.float16).contiguous(),
        "v_packed": packed,
        "v_scale": scale,
        "v_min": low,
    }


def _dequantize_int4(parts: dict[str, torch.Tensor], dim: int, dtype: torch.dtype) -> torch.Tensor:
    values = _int4_per_token_back(parts["v_packed"], parts["v_scale"], parts["v_min"], dim, dtype)
    layers, tokens, heads = values.shape[:3]
    out = torch.empty(layers, tokens, 2, heads, dim, dtype=dtype)
    out[:, :, 1] = values
    k_packed, k_scale, k_min = parts["k_packed"], parts["k_scale"], parts["k_min"]
    full = k_packed.shape[1] * INT4_GROUP
    for layer in range(layers):  # one layer at a time: intermediates stay small
        pairs = k_packed[layer]  # [G, 32, H, D]: tokens 2i and 2i+1 share a byte
        q = torch.stack((pairs & 0x0F, pairs >> 4), dim=2).view(-1, INT4_GROUP, heads, dim)
        x = q.float().mul_(k_scale[layer].float().unsqueeze(1))
        out[layer, :full, 0] = x.add_(k_min[layer].float().unsqueeze(1)).view(full, heads, dim)
    out[:, full:, 0] = parts["k_tail"]
    return out


def _int4_keys_per_channel(keys: torch.Tensor) -> dict[str, torch.Tensor]:
    """Keys [L, G * 64, H, D]: one scale and minimum per channel over each 64 tokens."""
    layers, tokens, heads, dim = keys.shape
    groups = tokens // INT4_GROUP
    packed = torch.empty(layers, groups, INT4_GROUP // 2, heads, dim, dtype=torch.uint8)
    scale = torch.empty(layers, groups, heads, dim, dtype=torch.float16)
    low = torch.empty(layers, groups, heads, dim, dtype=torch.float16)
    for layer in range(layers):
        x = keys[layer].float().reshape(groups, INT4_GROUP, heads, dim)  # may be kv itself
        low[layer] = x.amin(dim=1)
        scale[layer] = (x.amax(dim=1) - low[layer].float()) / _INT4_LEVELS
        inverse = 1.0 / scale[layer].float().clamp_min(_TINY)
        x = (x - low[layer].float().unsqueeze(1)).mul_(inverse.unsqueeze(1))
        q = x.round_().clamp_(0, _INT4_LEVELS).to(torch.uint8)  # [G, 64, H, D]
        packed[layer] = q[:, 0::2] | (q[:, 1::2] << 4)  # even token in the low nibble
    return {"k_packed": packed, "k_scale": scale, "k_min": low}


def _int4_per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[..., D] -> packed [..., G * 32], scale and minimum [..., G]: groups of 64 along D."""
    dim = x.shape[-1]
    groups = -(-dim // INT4_GROUP)
    rows = x.reshape(-1, dim)
    packed = torch.empty(rows.shape[0], groups * INT4_GROUP // 2, dtype=torch.uint8)
    scale = torch.empty(rows.shape[0], groups, dtype=torch.float16)
    low = torch.empty(rows.shape[0], groups, dtype=torch.float16)
    for part in _chunks(rows.shape[0]):
        g = _grouped(rows[part].float())  # [n, G, 64]
        low[part] = g.amin(dim=-1)
        scale[part] = (g.amax(dim=-1) - low[part].float()) / _INT4_LEVELS
        inverse = 1.0 / scale[part].float().clamp_min(_TINY)
        g = (g - low[part].float().unsqueeze(-1)).mul_(inverse.unsqueeze(-1))  # g may be kv
        q = g.round_().clamp_(0, _INT4_LEVELS).to(torch.uint8).flatten(1)  # [n, G * 64]
        packed[part] = q[:, 0::2] | (q[:, 1::2] << 4)  # even index in the low nibble
    lead = x.shape[:-1]
    return (
        packed.view(*lead, packed.shape[-1]),
        scale.view(*lead, groups),
        low.view(*lead, groups),
    )


def _int4_per_token_back(
    packed: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, dim: int, dtype: torch.dtype
) -> torch.Tensor:
    lead = packed.shape[:-1]
    packed_rows = packed.view(-1, packed.shape[-1])
    scale_rows, low_rows = scale.view(-1, scale.shape[-1]), low.view(-1, low.shape[-1])
    out = torch.empty(packed_rows.shape[0], dim, dtype=dtype)
    for part in _chunks(packed_rows.shape[0]):
        pairs = packed_rows[part]
        q = torch.stack((pairs & 0x0F, pairs >> 4), dim=-1).view(pairs.shape[0], -1, INT4_GROUP)
        x = q.float().mul_(scale_rows[part].float().unsqueeze(-1))
        x = x.add_(low_rows[part].float().unsqueeze(-1))
        out[part] = x.flatten(1)[:, :dim]
    return out.view(*lead, dim)


def _chunks(num_rows: int) -> list[slice]:
    """Row ranges small enough to stay in cache: one pass over memory instead of five."""
    return [slice(i, i + _CHUNK_ROWS) for i in range(0, num_rows, _CHUNK_ROWS)]


def _grouped(x: torch.Tensor) -> torch.Tensor:
    """[n, D] -> [n, G, 64]; a short last group repeats its last value (keeps min and max)."""
    padding = -x.shape[-1] % INT4_GROUP
    if padding:
        x = torch.cat((x, x[:, -1:].expand(x.shape[0], padding)), dim=-1)
    return x.view(x.shape[0], -1, INT4_GROUP)
