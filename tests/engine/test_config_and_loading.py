"""Engine configuration from Roost settings, and model resolution errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from roost.config import EngineSettings, Settings
from roost.engine.engine_config import EngineConfig
from roost.engine.gguf_source import GGUFSource
from roost.engine.loader import file_digest, load_checkpoint, resolve_model_path
from roost.errors import InvalidRequest


def test_from_settings_maps_every_engine_key(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        engine=EngineSettings(
            model="/models/x.gguf",
            dtype="float32",
            kv_cache_gb=2.0,
            block_size=32,
            max_num_seqs=8,
            prefill_chunk_tokens=1024,
            max_model_len=4096,
            num_threads=2,
            enable_prefix_cache=False,
        ),
    )
    config = EngineConfig.from_settings(settings)
    assert config.home == tmp_path
    assert (config.model, config.dtype, config.kv_cache_gb) == ("/models/x.gguf", "float32", 2.0)
    assert (config.block_size, config.max_num_seqs, config.prefill_chunk_tokens) == (32, 8, 1024)
    assert (config.max_model_len, config.num_threads) == (4096, 2)
    assert config.enable_prefix_cache is False


def test_invalid_engine_config_names_the_key() -> None:
    with pytest.raises(InvalidRequest) as caught:
        EngineConfig(prefill_chunk_tokens=100)
    assert caught.value.param == "engine.prefill_chunk_tokens"


def test_auto_dtype_on_cpu_is_bf16_or_fp32() -> None:
    assert EngineConfig().torch_dtype(torch.device("cpu")) in (torch.bfloat16, torch.float32)
    assert EngineConfig(dtype="float32").torch_dtype(torch.device("cpu")) == torch.float32


def test_unknown_model_path_names_the_path_and_the_formats(tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    with pytest.raises(InvalidRequest) as caught:
        load_checkpoint(str(missing), tmp_path)
    assert str(missing) in caught.value.message
    assert ".gguf" in caught.value.message
    assert "safetensors" in caught.value.message
    assert caught.value.param == "model"


def test_bundled_model_resolves_without_importing_its_package() -> None:
    path = resolve_model_path("smollm2-135m-instruct")
    assert path.suffix == ".gguf"
    assert path.is_file()


def test_gguf_qk_rows_are_restored_to_rotate_half_order() -> None:
    """Applying llama.cpp's permutation and then ours gives back the original rows."""
    heads, head_dim, hidden = 3, 8, 5
    original = torch.arange(heads * head_dim * hidden, dtype=torch.float32).view(-1, hidden)
    permuted = (
        original.reshape(heads, 2, head_dim // 2, hidden).swapaxes(1, 2).reshape(original.shape)
    )
    source = GGUFSource.__new__(GGUFSource)

    class _Config:
        architecture = "llama"
        num_heads = heads
        num_kv_heads = heads

    source.config = _Config()  # type: ignore[assignment]
    restored = source._undo_rope_permutation("model.layers.0.self_attn.q_proj.weight", permuted)
    assert torch.equal(restored, original)


def test_converted_model_is_cached_by_digest(smollm_checkpoint: object, model_home: Path) -> None:
    digest = file_digest(resolve_model_path("smollm2-135m-instruct"))
    cached = model_home / "models" / digest
    assert (cached / "complete").is_file()
    assert (cached / "model.safetensors").is_file()
    assert (cached / "tokenizer.json").is_file()
