"""A session's next prompt continues the exact token ids of its last request.

Clients send a conversation back as text. Re-encoding the assistant's reply does not always
give back the ids the model generated: a sampler may pick a non-canonical split of a word
(`"ff" "pp"` where the tokenizer writes `"ffpp"`), and from that token on the new prompt
shares no K/V with the session's cache, so the rest of the history is prefilled again.

:class:`ContinuationMemory` keeps each session's last prompt + output ids and, when a new
prompt spells the same text with other ids, splices the old ids in (they decode to the
same text, and the model produced them itself). The spliced region is found by comparing
the tokens' surface strings, so it works for any tokenizer and chat template.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

# How far past the first differing token two spellings of the same text may run before
# they line up again; beyond it the prompt is taken as really different (an edit).
MAX_SPLICE_TOKENS = 64
MAX_SESSIONS = 4096  # ~8 KB per 2K-token session as int32: ~32 MB at most


class ContinuationMemory:
    """Last token ids per session, LRU-bounded. Thread-safe: requests are aligned on the
    caller's thread, finished ones remembered on the engine's worker thread.

    ``surface`` gives a token's exact spelling (byte-level piece); ``decode`` the text of
    ids, used to check a splice before it is used.
    """

    def __init__(
        self,
        surface: Callable[[int], str],
        decode: Callable[[list[int]], str],
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.surface = surface
        self.decode = decode
        self.max_sessions = max_sessions
        self._tokens: OrderedDict[Hashable, array[int]] = OrderedDict()
        self._lock = threading.Lock()
        self.num_spliced_prompts = 0  # prompts that took generated ids (diagnostics, tests)

    def remember(self, session: Hashable, token_ids: Sequence[int]) -> None:
        ids = array("i", token_ids)
        with self._lock:
            self._tokens[session] = ids
            self._tokens.move_to_end(session)
            while len(self._tokens) > self.max_sessions:
                self._tokens.popitem(last=False)

    def forget(self, session: Hashable) -> None:
        with self._lock:
            self._tokens.pop(session, None)

    def align(self, session: Hashable, prompt: list[int]) -> list[int]:
        """``prompt`` with every stretch that spells the session's previous ids' text
        replaced by those ids (unchanged when there is no previous request)."""
        with self._lock:
            previous = self._tokens.get(session)
        if previous is None:
            return prompt
        aligned = splice_same_text(previous.tolist(), prompt, self.surface)
        if aligned == prompt:
            return prompt
        # Pieces are exact for byte-level vocabularies; other vocabularies could in theory
        # spell two texts alike, so a splice is used only if the text is really unchanged.
        if self.decode(aligned) != self.decode(prompt):
            return prompt
        with self._lock:
            self.num_spliced_prompts += 1
        return aligned


def splice_same_text(
    previous: list[int], prompt: list[int], surface: Callable[[int], str]
) -> list[int]:
    """``prompt`` re-spelled with ``previous``'s ids wherever both spell the same text."""
    result: list[int] = []
    i = j = 0
    while True:
        while i < len(previous) and j < len(prompt) and previous[i] == prompt[j]:
            result.append(prompt[j])
            i += 1
            j += 1
        if i == len(previous) or j == len(prompt):
            break
        synced = _resync(previous, i, prompt, j, surface)
        if synced is None:
            break  # a real difference: the prompt follows its own branch from here
        result.extend(previous[i : synced[0]])
        i, j = synced
    return result + prompt[j:]


def _resync(
    previous: list[int], i: int, prompt: list[int], j: int, surface: Callable[[int], str]
) -> tuple[int, int] | None:
    """The first positions after ``i`` and ``j`` where both spans spell the same text."""
    left, right = "", ""
    a, b = i, j
    while a - i <= MAX_SPLICE_TOKENS and b - j <= MAX_SPLICE_TOKENS:
        if len(left) <= len(right) and a < len(previous):
            left += surface(previous[a])
            a += 1
        elif b < len(prompt):
            right += surface(prompt[b])
            b += 1
        else:
            return None
        if not (left.startswith(right) or right.startswith(left)):
            return None
        if left == right:
            return a, b
    return None
