"""How much memory the KV pool and the warm session tier get: by default a share of what
the machine has free when the model is loaded, or what the operator configured.

A fixed default (it was 0.5 GB) left a 24 GB machine serving 32 agents from ~23K tokens of
pool: their histories evicted each other and were prefilled again every turn. A configured
size larger than the memory available is refused at start-up, naming both numbers, rather
than left to the kernel's OOM killer mid-request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from roost.errors import InvalidRequest

GB = 2**30
_CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True, slots=True)
class MemoryBudget:
    pool_bytes: int  # the engine's KV block pool
    warm_bytes: int  # quantized session caches demoted from the pool
    available_bytes: int  # free when the budget was made (what the fractions apply to)


def available_memory_bytes() -> int:
    """Memory this process may still use: MemAvailable, or less under a cgroup limit."""
    available = _meminfo_available()
    limit = _read_int(_CGROUP / "memory.max")
    current = _read_int(_CGROUP / "memory.current")
    if limit is not None and current is not None:
        available = min(available, max(0, limit - current))
    return available


def plan_memory(
    *,
    kv_cache_gb: float | None,
    kv_cache_fraction: float,
    warm_gb: float | None,
    warm_fraction: float,
    useful_pool_bytes: int,
    available_bytes: int | None = None,
) -> MemoryBudget:
    """The pool and warm-tier sizes. Unset sizes take their fraction of the available
    memory (the pool never more than ``useful_pool_bytes``: every sequence at full
    context); a configured pool that does not fit raises ``InvalidRequest``."""
    available = available_memory_bytes() if available_bytes is None else available_bytes
    if kv_cache_gb is not None:
        check_pool_fits(kv_cache_gb, kv_cache_fraction, available)
        pool = int(kv_cache_gb * GB)
    else:
        pool = min(int(available * kv_cache_fraction), useful_pool_bytes)
    left = max(0, available - pool)
    warm = int(warm_gb * GB) if warm_gb is not None else int(left * warm_fraction)
    return MemoryBudget(pool, warm, available)


def check_pool_fits(
    kv_cache_gb: float, kv_cache_fraction: float, available_bytes: int | None = None
) -> None:
    """Refuse a configured pool larger than the memory available (before a model loads)."""
    available = available_memory_bytes() if available_bytes is None else available_bytes
    if int(kv_cache_gb * GB) > available:
        raise InvalidRequest(
            f"engine.kv_cache_gb is {kv_cache_gb:g} GB but only {available / GB:.1f} GB"
            " of memory is available; lower it or leave it unset to use"
            f" engine.kv_cache_fraction ({kv_cache_fraction:g}) of what is free",
            param="engine.kv_cache_gb",
        )


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return int(pages * size)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit
