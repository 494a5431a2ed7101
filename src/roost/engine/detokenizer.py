"""Incremental detokenization with stop strings matched across token boundaries.

Text that could still turn out to be the start of a stop string is held back from the
stream until it is decided, so a client never sees part of a stop string.
"""

from __future__ import annotations

from roost.engine.tokenizer import Tokenizer

_INCOMPLETE = "\ufffd"  # what a partial UTF-8 sequence decodes to


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas; finds stop strings."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        prompt_tail: list[int],
        stop: tuple[str, ...],
        *,
        skip_special_tokens: bool,
        include_stop_str: bool,
    ) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.skip_special_tokens = skip_special_tokens
        self.include_stop_str = include_stop_str
        self.max_stop_len = max((len(s) for s in stop), default=0)
        # A few prompt tokens give the decoder context (leading spaces, merges).
        self.tokens: list[int] = list(prompt_tail)
        self.prefix_offset = 0
        self.read_offset = len(self.tokens)
        self.text = ""  # all decoded completion text
        self.num_emitted = 0  # characters of `text` already handed out
        self.stopped_by: str | None = None

    def add(self, token_id: int) -> None:
        """Append one token; may set :attr:`stopped_by` and truncate :attr:`text`."""
        self.tokens.append(token_id)
        prefix = self._decode(self.tokens[self.prefix_offset : self.read_offset])
        full = self._decode(self.tokens[self.prefix_offset :])
        if len(full) > len(prefix) and not full.endswith(_INCOMPLETE):
            start = len(self.text)
            self.text += full[len(prefix) :]
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.tokens)
            self._find_stop(start)

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=self.skip_special_tokens)

    def _find_stop(self, new_text_start: int) -> None:
        if not self.stop:
            return
        # A stop string may begin inside text decoded earlier.
        search_from = max(0, new_text_start - self.max_stop_len + 1)
        best: tuple[int, str] | None = None
        for stop in self.stop:
            index = self.text.find(stop, search_from)
            if index != -1 and (best is None or index < best[0]):
                best = (index, stop)
        if best is not None:
            index, stop = best
            self.stopped_by = stop
            self.text = self.text[: index + len(stop) if self.include_stop_str else index]

    def take_delta(self, *, final: bool) -> str:
        """New text safe to show: withholds a tail that may begin a stop string unless final."""
        limit = len(self.text)
        if not final and self.stopped_by is None and self.stop:
            limit -= self._held_back_chars()
        if limit <= self.num_emitted:
            return ""
        delta = self.text[self.num_emitted : limit]
        self.num_emitted = limit
        return delta

    def _held_back_chars(self) -> int:
        text = self.text
        longest = 0
        for stop in self.stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest
