"""How much a model can read: its context length and how it counts tokens.

Callers that keep a transcript within a model's context (the agents' context window)
ask :meth:`roost.llm.service.LLMService.limits`. A model that knows its own limits (the
local engine: its context length and tokenizer) implements :class:`KnowsLimits`; for
remote models the operator configures ``[llm.context_lengths]``, else a conservative
default applies, and tokens are over-estimated from characters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

TokenCounter = Callable[[str], int]

# No tokenizer in use makes fewer than one token per three characters of English or code,
# so this over-estimates: a window sized with it never overflows for want of a tokenizer.
_CHARS_PER_TOKEN = 3
DEFAULT_CONTEXT_LENGTH = 8192


def estimate_tokens(text: str) -> int:
    """A conservative (high) token count for ``text`` when no tokenizer is at hand."""
    return math.ceil(len(text) / _CHARS_PER_TOKEN) if text else 0


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """A model's context length (prompt + reply, tokens) and its token counter.

    ``exact`` tells whether ``count_tokens`` is the model's own tokenizer or an estimate.
    """

    context_length: int
    count_tokens: TokenCounter = estimate_tokens
    exact: bool = False


@runtime_checkable
class KnowsLimits(Protocol):
    """A model that can tell its limits itself (the local engine)."""

    async def limits(self) -> ModelLimits | None:
        """Its limits, or None when it cannot tell now (e.g. still loading)."""
        ...


def tighter(first: ModelLimits, second: ModelLimits) -> ModelLimits:
    """The limits that satisfy both: a group may fail over to any of its deployments."""
    if second.context_length < first.context_length:
        return second
    return first
