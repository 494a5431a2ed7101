"""The vectors of recently embedded texts, so the same text is not embedded twice in a row.

One agent run embeds its task several times (memory recall, procedure hints, procedure
record); a knowledge query is often repeated. A bounded LRU keyed by the text's SHA-256
turns the repeats into dictionary hits. Vectors are read-only copies: a caller cannot
alter what the next caller gets.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]


class RecentVectors:
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._vectors: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()  # embeddings are computed in worker threads

    def embed(self, texts: Sequence[str], compute: Callable[[list[str]], Vectors]) -> Vectors:
        """``compute`` only for the texts not seen recently, in one batch; rows in order."""
        keys = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for t in texts]
        with self._lock:
            found = {k: self._vectors[k] for k in keys if k in self._vectors}
            for key in found:
                self._vectors.move_to_end(key)
        unique: dict[bytes, int] = {}  # each missing text once, at its first position
        for index, key in enumerate(keys):
            if key not in found and key not in unique:
                unique[key] = index
        if unique:
            computed = compute([texts[i] for i in unique.values()])
            with self._lock:
                for row, key in enumerate(unique):
                    vector = computed[row].copy()
                    vector.setflags(write=False)
                    found[key] = self._vectors[key] = vector
                    self._vectors.move_to_end(key)
                while len(self._vectors) > self.capacity:
                    self._vectors.popitem(last=False)
        self.hits += len(texts) - len(unique)
        self.misses += len(unique)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
