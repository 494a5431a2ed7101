"""Identifiers made in Python so that both backends store the same text."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """A unique id that sorts by creation time: ``<prefix>_<12 hex ms><16 hex random>``."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"
