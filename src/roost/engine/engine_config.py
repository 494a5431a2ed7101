"""The engine's own configuration, built from ``roost.config.EngineSettings`` or by hand."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from roost.errors import InvalidRequest

if TYPE_CHECKING:
    from roost.config import EngineSettings, Settings

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass(slots=True)
class EngineConfig:
    """What to load and how to serve it. ``home`` holds the converted-model cache."""

    model: str = "smollm2-135m-instruct"
    home: Path = Path("~/.roost")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # Weight-only int4/int8 matmuls (CPU); auto: 4-bit where the weights already are.
    weight_quantization: Literal["auto", "none", "int8", "int4"] = "auto"
    # Prefill matmuls in float32 (auto: on CPUs without AMX, if the copy fits; prefill_precision.py)
    prefill_dtype: Literal["auto", "float32", "compute"] = "auto"
    kv_cache_gb: float | None = None  # None: kv_cache_fraction of the available memory
    kv_cache_fraction: float = 0.2
    block_size: int = 16
    max_num_seqs: int = 32
    prefill_chunk_tokens: int = 512
    max_model_len: int | None = None
    num_threads: int | None = None
    enable_prefix_cache: bool = True
    # Per-session KV caches (roost.kvcache): hot share of the pool, warm RAM, cold disk.
    session_cache: bool = True
    session_hot_fraction: float = 0.5
    session_warm_gb: float | None = None  # None: warm_fraction of what the pool leaves
    session_warm_fraction: float = 0.1
    session_cold_gb: float = 20.0
    session_quantization: Literal["none", "int8", "int4"] = "int8"
    session_dir: Path | None = None  # cold tier; default <home>/kv
    max_tokens: int | None = 4096  # ceiling on a request's max_tokens (None: the context)
    fair_scheduling: bool = True  # share slots fairly between tenants
    tenant_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        if self.session_dir is not None:
            self.session_dir = Path(self.session_dir).expanduser()
        checks = [
            (self.kv_cache_gb is None or self.kv_cache_gb > 0, "kv_cache_gb", "must be positive"),
            (0 < self.kv_cache_fraction <= 0.9, "kv_cache_fraction", "must be in (0, 0.9]"),
            (1 <= self.block_size <= 1024, "block_size", "must be between 1 and 1024"),
            (self.max_num_seqs >= 1, "max_num_seqs", "must be at least 1"),
            (
                256 <= self.prefill_chunk_tokens <= 4096,
                "prefill_chunk_tokens",
                "must be between 256 and 4096",
            ),
            (
                self.max_model_len is None or self.max_model_len >= 16,
                "max_model_len",
                "must be at least 16",
            ),
            (self.num_threads is None or self.num_threads >= 1, "num_threads", "must be >= 1"),
            (self.max_tokens is None or self.max_tokens >= 1, "max_tokens", "must be >= 1"),
            (all(w > 0 for w in self.tenant_weights.values()), "tenant_weights", "must be > 0"),
            (self.device in ("auto", "cpu", "cuda"), "device", "must be auto, cpu or cuda"),
            (self.dtype == "auto" or self.dtype in _DTYPES, "dtype", f"must be auto or {_DTYPES}"),
            (
                self.weight_quantization in ("auto", "none", "int8", "int4"),
                "weight_quantization",
                "must be auto, none, int8 or int4",
            ),
            (
                self.prefill_dtype in ("auto", "float32", "compute"),
                "prefill_dtype",
                "must be auto, float32 or compute",
            ),
            (0 < self.session_hot_fraction <= 1, "session_cache.hot_fraction", "must be in (0, 1]"),
            (
                self.session_warm_gb is None or self.session_warm_gb >= 0,
                "session_cache.warm_gb",
                "must be >= 0",
            ),
            (
                0 < self.session_warm_fraction <= 0.9,
                "session_cache.warm_fraction",
                "must be in (0, 0.9]",
            ),
            (self.session_cold_gb >= 0, "session_cache.cold_gb", "must be >= 0"),
            (
                self.session_quantization in ("none", "int8", "int4"),
                "session_cache.quantization",
                "must be none, int8 or int4",
            ),
        ]
        for ok, param, message in checks:
            if not ok:
                raise InvalidRequest(f"engine.{param} {message}", param=f"engine.{param}")

    @classmethod
    def from_settings(cls, settings: Settings | EngineSettings) -> EngineConfig:
        from roost.config import Settings

        if isinstance(settings, Settings):
            engine, home = settings.engine, settings.home
        else:
            engine, home = settings, Path("~/.roost")
        return cls(
            model=engine.model,
            home=home,
            device=engine.device,
            dtype=engine.dtype,
            weight_quantization=engine.weight_quantization,
            prefill_dtype=engine.prefill_dtype,
            kv_cache_gb=engine.kv_cache_gb,
            kv_cache_fraction=engine.kv_cache_fraction,
            block_size=engine.block_size,
            max_num_seqs=engine.max_num_seqs,
            prefill_chunk_tokens=engine.prefill_chunk_tokens,
            max_model_len=engine.max_model_len,
            num_threads=engine.num_threads,
            enable_prefix_cache=engine.enable_prefix_cache,
            session_cache=engine.session_cache.enabled,
            session_hot_fraction=engine.session_cache.hot_fraction,
            session_warm_gb=engine.session_cache.warm_gb,
            session_warm_fraction=engine.session_cache.warm_fraction,
            session_cold_gb=engine.session_cache.cold_gb,
            session_quantization=engine.session_cache.quantization,
            session_dir=engine.session_cache.directory,
            max_tokens=engine.max_tokens,
            fair_scheduling=engine.fair_scheduling,
            tenant_weights=dict(engine.tenant_weights),
        )

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InvalidRequest(
                "engine.device is cuda but no CUDA device is available", param="engine.device"
            )
        return torch.device(self.device)

    def torch_dtype(self, device: torch.device) -> torch.dtype:
        if self.dtype != "auto":
            return _DTYPES[self.dtype]
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX), where it beats fp32."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return False
    present = set(flags.split())
    return bool({"avx512_bf16", "amx_bf16"} & present)


def default_num_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
