"""Batched ingestion: the chunks of many sources embedded together, longest-alike first.

Embedding is where ingestion spends its time, and a transformer's cost is the padded
batch: every text in a batch is padded to the longest one. Embedding each file's chunks
on their own pads short tail chunks of one file to its longest chunk; here the chunks of
a whole window of files (up to :data:`WINDOW_CHUNKS`) are sorted by token count and cut
into batches of near-equal length, which on Roost's own docs cuts the tokens the model
processes by nearly a fifth (``docs/operations.md``). Vectors do not depend on their batch
neighbours beyond float rounding (padding is masked), which the tests check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roost.llm.embeddings import Embedder, Vectors
from roost.memory.chunking import Chunk
from roost.memory.extract import Extracted

ChunkProgress = Callable[[int, int], None]  # chunks embedded so far, chunks in the window
WINDOW_CHUNKS = 512  # chunks held in memory before they are embedded and written
EMBED_BATCH = 32  # texts per forward pass: padding waste ~3 % once sorted by length


@dataclass(slots=True)
class PendingSource:
    """A source whose content changed: chunked, waiting for its vectors."""

    uri: str
    extracted: Extracted
    digest: str
    num_bytes: int
    meta: dict[str, Any]
    is_new: bool
    chunks: list[Chunk]
    vectors: Vectors | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def embed_sources(
    embedder: Embedder,
    pending: Sequence[PendingSource],
    *,
    batch_size: int = EMBED_BATCH,
    progress: ChunkProgress | None = None,
) -> None:
    """Fill in ``vectors`` of every pending source, embedding all their chunks sorted by
    length in batches of ``batch_size``."""
    flat = [(n, chunk) for n, source in enumerate(pending) for chunk in source.chunks]
    order = sorted(range(len(flat)), key=lambda i: (flat[i][1].tokens, len(flat[i][1].text)))
    vectors = np.zeros((len(flat), embedder.dimension), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        picked = order[start : start + batch_size]
        vectors[picked] = await embedder.embed([flat[i][1].text for i in picked])
        if progress is not None:
            progress(min(start + batch_size, len(order)), len(order))
    offset = 0
    for source in pending:
        source.vectors = vectors[offset : offset + len(source.chunks)]
        offset += len(source.chunks)
