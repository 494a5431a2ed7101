"""Identifiers made in Python so that both backends store the same text."""

from __future__ import annotations

import secrets
import threading
import time

_RANDOM_MAX = 2**64 - 1
_lock = threading.Lock()
_last = [0, 0]  # ms, random part of the newest id made by this process


def new_id(prefix: str) -> str:
    """A unique id that sorts by creation time: ``<prefix>_<12 hex ms><16 hex random>``.

    Within one process ids sort in the order they were made, also within a millisecond
    (the random part of the previous id plus one, as monotonic ULIDs do): "newest first"
    by id is then the order of events, not a coin toss between two made at once.
    """
    now = time.time_ns() // 1_000_000
    with _lock:
        ms, random = _last
        if now > ms or random >= _RANDOM_MAX:
            ms, random = max(now, ms + (random >= _RANDOM_MAX)), secrets.randbits(63)
        else:
            random += 1
        _last[:] = [ms, random]
    return f"{prefix}_{ms:012x}{random:016x}"
