"""Complexity routing (the design's "cost optimizer"): pick a small or a large model
group per request. The default policy uses cheap rules; the learned router of the
agents layer plugs in through the same :class:`RoutingPolicy` protocol."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from roost.config import LLMComplexitySettings
from roost.llm.messages import Message, ModelSettings, ToolDefinition

_CODE = re.compile(
    r"```|\bdef \w+\(|\bclass \w+[:(]|\bSELECT\b.+\bFROM\b", re.IGNORECASE | re.DOTALL
)


class RoutingPolicy(Protocol):
    """Chooses the model group that should answer a request."""

    def choose(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition],
        settings: ModelSettings,
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class ComplexityPolicy:
    """Large model for long prompts, tool use, code, many turns or "hard" keywords; else small."""

    small: str
    large: str
    max_simple_chars: int = 1200
    max_simple_turns: int = 6
    hard_keywords: tuple[str, ...] = ("prove", "refactor", "step by step", "analyze", "design")

    @classmethod
    def from_settings(cls, settings: LLMComplexitySettings) -> ComplexityPolicy | None:
        """The configured policy, or None unless both groups are named."""
        if not settings.small or not settings.large:
            return None
        return cls(
            settings.small,
            settings.large,
            settings.max_simple_chars,
            hard_keywords=tuple(k.lower() for k in settings.hard_keywords),
        )

    def choose(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition],
        settings: ModelSettings,
    ) -> str:
        return self.large if self.is_hard(messages, tools) else self.small

    def is_hard(self, messages: Sequence[Message], tools: Sequence[ToolDefinition]) -> bool:
        if tools or len(messages) > self.max_simple_turns:
            return True
        text = "\n".join(m.text for m in messages)
        if len(text) > self.max_simple_chars or _CODE.search(text):
            return True
        lowered = text.lower()
        return any(keyword in lowered for keyword in self.hard_keywords)
