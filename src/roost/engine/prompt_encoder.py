"""Encode chat prompts by message, reusing the ids of messages seen before.

A returning agent's prompt is its whole history again: encoding 2K tokens of text takes
15-20 ms on a busy 2-core machine, more than the model needs for the ~60 new tokens. The
tokenizer cuts text at special tokens before anything else, so a prompt's ids are the ids
of its pieces between special tokens, concatenated; those pieces are the chat messages, and
all but the newest were encoded on an earlier turn. This is exact only when no special
token strips the whitespace next to it, which :func:`splits_cleanly` checks once.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable

MAX_CACHED_CHARS = 32_000_000  # ~ 8M tokens of history held as ids: tens of MB at most


def splits_cleanly(tokenizer_json: str) -> list[str] | None:
    """The special tokens to cut at, or None when cutting could change the ids (a token
    that strips whitespace, or one matched after normalisation)."""
    added = json.loads(tokenizer_json).get("added_tokens", [])
    tokens: list[str] = []
    for token in added:
        if token.get("lstrip") or token.get("rstrip") or token.get("normalized"):
            return None
        if token.get("single_word"):
            return None
        tokens.append(str(token["content"]))
    return tokens


class PromptEncoder:
    """``encode(text)`` equal to the tokenizer's, with pieces between special tokens cached
    (least recently used first out). Thread-safe."""

    def __init__(self, encode: Callable[[str], list[int]], special_tokens: list[str]) -> None:
        self._encode = encode
        ordered = sorted(special_tokens, key=len, reverse=True)  # longest match first
        self._splitter = re.compile(f"({'|'.join(map(re.escape, ordered))})") if ordered else None
        self._cache: OrderedDict[str, list[int]] = OrderedDict()
        self._cached_chars = 0
        self._lock = threading.Lock()

    def encode(self, text: str) -> list[int]:
        if self._splitter is None:
            return self._encode(text)
        ids: list[int] = []
        for piece in self._splitter.split(text):
            if piece:
                ids += self._piece(piece)
        return ids

    def _piece(self, piece: str) -> list[int]:
        with self._lock:
            cached = self._cache.get(piece)
            if cached is not None:
                self._cache.move_to_end(piece)
                return cached
        ids = self._encode(piece)
        with self._lock:
            if piece not in self._cache:
                self._cache[piece] = ids
                self._cached_chars += len(piece)
            while self._cached_chars > MAX_CACHED_CHARS:
                old, _ = self._cache.popitem(last=False)
                self._cached_chars -= len(old)
        return ids
