"""The architecture description of a Llama-family model, independent of where it came from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from roost.errors import InvalidRequest

Architecture = Literal["llama", "qwen2", "mistral"]
SUPPORTED_ARCHITECTURES: tuple[str, ...] = ("llama", "qwen2", "mistral")


@dataclass(slots=True)
class RopeScaling:
    """Llama 3 style frequency scaling ("llama3" rope_type); other types are rejected at load."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclass(slots=True)
class ModelConfig:
    """Shapes and constants of a decoder-only Llama-family transformer."""

    architecture: Architecture
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    attention_bias: bool = False  # Qwen2 has a bias on q/k/v projections
    tie_word_embeddings: bool = False
    sliding_window: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise InvalidRequest(
                f"architecture {self.architecture!r} is not supported; "
                f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}",
                param="architecture",
            )
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads"):
            if getattr(self, name) <= 0:
                raise InvalidRequest(f"{name} must be positive", param=name)
        if self.num_heads % self.num_kv_heads != 0:
            raise InvalidRequest(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads})",
                param="num_kv_heads",
            )

    @property
    def num_params(self) -> int:
        """Parameter count (embedding counted once when tied)."""
        h, i, d = self.hidden_size, self.intermediate_size, self.head_dim
        attn = h * self.num_heads * d * 2 + h * self.num_kv_heads * d * 2
        per_layer = attn + 3 * h * i + 2 * h
        head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return self.vocab_size * h + head + self.num_layers * per_layer + h

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        data = json.loads(text)
        scaling = data.pop("rope_scaling", None)
        return cls(**data, rope_scaling=RopeScaling(**scaling) if scaling else None)

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> ModelConfig:
        """Build from a Hugging Face ``config.json`` dictionary."""
        model_type = str(hf.get("model_type", "llama"))
        if model_type not in SUPPORTED_ARCHITECTURES:
            raise InvalidRequest(
                f"model_type {model_type!r} is not supported; "
                f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}",
                param="model",
            )
        num_heads = int(hf["num_attention_heads"])
        hidden = int(hf["hidden_size"])
        scaling = hf.get("rope_scaling") or (hf.get("rope_parameters") or None)
        rope_scaling = None
        rope_theta = float(hf.get("rope_theta", 10000.0))
        if isinstance(scaling, dict):
            rope_theta = float(scaling.get("rope_theta", rope_theta))
            kind = scaling.get("rope_type", scaling.get("type", "default"))
            if kind == "llama3":
                rope_scaling = RopeScaling(
                    factor=float(scaling["factor"]),
                    low_freq_factor=float(scaling["low_freq_factor"]),
                    high_freq_factor=float(scaling["high_freq_factor"]),
                    original_max_position_embeddings=int(
                        scaling["original_max_position_embeddings"]
                    ),
                )
            elif kind not in ("default", None):
                raise InvalidRequest(f"rope scaling {kind!r} is not supported", param="model")
        sliding = hf.get("sliding_window") if hf.get("use_sliding_window", True) else None
        return cls(
            architecture=model_type,  # type: ignore[arg-type]
            vocab_size=int(hf["vocab_size"]),
            hidden_size=hidden,
            intermediate_size=int(hf["intermediate_size"]),
            num_layers=int(hf["num_hidden_layers"]),
            num_heads=num_heads,
            num_kv_heads=int(hf.get("num_key_value_heads") or num_heads),
            head_dim=int(hf.get("head_dim") or hidden // num_heads),
            max_position_embeddings=int(hf.get("max_position_embeddings", 2048)),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-5)),
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            attention_bias=model_type == "qwen2" or bool(hf.get("attention_bias", False)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            sliding_window=int(sliding) if sliding else None,
        )
