"""Weight-only int4/int8 decode matmuls: exact where the weights already are 4-bit, the
float path everywhere else (float32 engines, other devices, weights off the grid)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models

from roost.engine import Engine, EngineConfig, SamplingParams
from roost.engine.linear import QUANTIZED_MAX_ROWS, Linear
from roost.engine.loader import load_checkpoint
from roost.engine.weight_quant import (
    GROUP_SIZE,
    int4_codes,
    is_on_int4_grid,
    pack_int4,
    pack_int8,
)
from roost.engine.weights import build_model
from roost.errors import InvalidRequest

transformers = pytest.importorskip("transformers")
VOCAB = 96


def snap_to_int4_grid(weight: torch.Tensor) -> torch.Tensor:
    """What a Q4_1 GGUF holds: every group of 32 on its own 16-level grid."""
    n, k = weight.shape
    codes, step, low = int4_codes(weight)
    return (codes.view(n, -1, GROUP_SIZE) * step[..., None] + low[..., None]).view(n, k)


def save_tiny_llama(directory: Path, *, on_grid: bool) -> None:
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=95,
    )
    torch.manual_seed(99)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1:
                param.mul_(4.0)  # decisive greedy choices
                if on_grid and "proj" in name:
                    param.copy_(snap_to_int4_grid(param))
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer = Tokenizer(
        models.WordLevel(vocab={f"t{i}": i for i in range(VOCAB)}, unk_token="t0")
    )
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps({"eos_token": "t95"}))


@pytest.fixture(scope="module")
def grid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("grid-llama")
    save_tiny_llama(directory, on_grid=True)
    return directory


@pytest.fixture(scope="module")
def float_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("float-llama")
    save_tiny_llama(directory, on_grid=False)
    return directory


def engine_for(path: Path, dtype: str, mode: str) -> Engine:
    config: Any = EngineConfig(
        model=str(path),
        home=path.parent,
        dtype=dtype,  # type: ignore[arg-type]
        weight_quantization=mode,  # type: ignore[arg-type]
        kv_cache_gb=0.01,
        block_size=4,
    )
    return Engine(config)


def test_int4_pack_reproduces_weights_on_a_grid() -> None:
    torch.manual_seed(0)
    weight = snap_to_int4_grid(torch.randn(96, 128))
    assert is_on_int4_grid(weight)
    x = torch.randn(3, 128)
    expected = x @ weight.T
    got = pack_int4(weight).matmul(x).float()
    # bf16 activations and bf16 scale/zero: the rounding the bf16 path has anyway.
    assert torch.allclose(got, expected, atol=0.05 * expected.abs().max().item())


def test_weights_off_the_grid_are_detected() -> None:
    torch.manual_seed(0)
    weight = torch.randn(64, 64)
    assert not is_on_int4_grid(weight)
    assert not is_on_int4_grid(torch.randn(64, 48))  # not a whole number of groups


def test_int8_pack_is_close_to_float() -> None:
    torch.manual_seed(0)
    weight, x = torch.randn(80, 64), torch.randn(2, 64)
    expected = x @ weight.T
    got = pack_int8(weight).matmul(x).float()
    assert torch.allclose(got, expected, atol=0.03 * expected.abs().max().item())


def test_auto_takes_4_bits_only_for_grid_weights_in_bf16(
    grid_model: Path, float_model: Path
) -> None:
    with engine_for(grid_model, "bfloat16", "auto") as engine:
        report = engine.weight_quantization
        assert (report.int4, report.exact, report.head) == (8, 0, "exact")
        model = engine.runner.model
        body = [m for layer in model.decoder_layers() for m in layer.modules() if m is not layer]
        projections = [m for m in body if hasattr(m, "weight_bytes")]
        as_bf16 = sum(m.in_features * m.out_features * 2 for m in projections)
        # 4 bits plus a bf16 scale and zero per 32 weights: under a third of bf16.
        assert sum(m.weight_bytes() for m in projections) < as_bf16 / 3
    with engine_for(float_model, "bfloat16", "auto") as engine:
        report = engine.weight_quantization
        assert (report.int4, report.exact, report.head) == (0, 8, "exact")
        assert "weights not on a 4-bit grid" in report.reasons
    with engine_for(grid_model, "float32", "auto") as engine:  # exact path: the reference
        assert (engine.weight_quantization.int4, engine.weight_quantization.exact) == (0, 8)


def test_unsupported_device_keeps_the_exact_path(grid_model: Path) -> None:
    checkpoint = load_checkpoint(str(grid_model), grid_model.parent)
    model, report = build_model(
        checkpoint.config,
        checkpoint.state,
        dtype=torch.float32,
        device=torch.device("cpu"),
        max_positions=64,
        quantization="none",
    )
    from roost.engine.quantize_model import quantize_model

    report = quantize_model(model, "int4", torch.device("cuda"), torch.bfloat16)
    assert (report.int4, report.exact, report.head) == (0, 8, "exact")
    assert any("no int4 kernel on cuda" in r for r in report.reasons)
    assert not any(layer.self_attn.qkv_proj.is_quantized for layer in model.decoder_layers())


def test_quantized_engine_tracks_the_float_engine(grid_model: Path) -> None:
    """Next-token distributions as bf16 without quantization gives (tiny random models
    have near-ties, so long greedy runs are compared on the bundled model instead)."""
    prompts = [[5, 17, 33, 2, 9, 60, 61], [3, 1, 4, 1, 5, 9, 2, 6], [7, 7, 7], [90, 12, 44, 1]]
    # The first token comes from prefill (float weights); the second from a decode step of
    # four rows, which multiplies the 4-bit weights.
    params = SamplingParams(
        temperature=0, max_tokens=2, ignore_eos=True, logprobs=True, top_logprobs=3
    )
    outputs = {}
    for mode in ("none", "auto"):
        with engine_for(grid_model, "bfloat16", mode) as engine:
            assert engine.weight_quantization.int4 == (8 if mode == "auto" else 0)
            outputs[mode] = engine.generate(prompts, params)
    for exact, quantized in zip(outputs["none"], outputs["auto"], strict=True):
        assert quantized.token_ids[0] == exact.token_ids[0]
        a, b = exact.logprobs[1], quantized.logprobs[1]
        assert [v for _, v in b.top] == pytest.approx([v for _, v in a.top], abs=0.1)


def test_decode_rows_use_the_packed_weights_and_prefill_the_float_ones() -> None:
    torch.manual_seed(0)
    weight = snap_to_int4_grid(torch.randn(64, 64))
    linear = Linear(64, 64, bias=False)
    with torch.no_grad():
        linear.weight.copy_(weight)
    linear.use_quantized(pack_int4(weight))
    # Scramble the float copy: the output shows which weights each batch size used.
    with torch.no_grad():
        linear.weight.mul_(-1)
    small, large = torch.randn(QUANTIZED_MAX_ROWS, 64), torch.randn(QUANTIZED_MAX_ROWS + 1, 64)
    assert torch.allclose(linear(small), small @ weight.T, atol=0.1)
    assert torch.allclose(linear(large), -(large @ weight.T), atol=1e-4)


def test_explicit_int4_and_int8_run_in_float32(grid_model: Path) -> None:
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    for mode, counts in (("int4", (8, 0)), ("int8", (0, 8))):
        with engine_for(grid_model, "float32", mode) as engine:
            report = engine.weight_quantization
            assert (report.int4, report.int8, report.head) == (*counts, "int4")
            [out] = engine.generate([[5, 17, 33]], params)
            assert len(out.token_ids) == 8


def test_bad_mode_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        EngineConfig(weight_quantization="int2")  # type: ignore[arg-type]
    assert caught.value.param == "engine.weight_quantization"
