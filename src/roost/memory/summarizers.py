"""A :class:`~roost.memory.consolidation.Summarizer` backed by any ``roost.llm`` model."""

from __future__ import annotations

from collections.abc import Sequence

from roost.llm.base import Model, RequestContext
from roost.llm.messages import Message, ModelSettings
from roost.memory.consolidation import Summary
from roost.memory.short_term import Turn

INSTRUCTIONS = (
    "You condense conversation turns into long-term memory. Write short factual sentences"
    " about the user and the task: names, preferences, decisions, dates, numbers, commitments."
    " Keep every specific detail; drop greetings and small talk. No preamble."
)


class ModelSummarizer:
    """One model request per summary, its output capped at the consolidation's budget."""

    def __init__(
        self,
        model: Model,
        *,
        instructions: str = INSTRUCTIONS,
        context: RequestContext | None = None,
    ) -> None:
        self.model = model
        self.instructions = instructions
        self.context = context

    async def summarize(self, turns: Sequence[Turn], *, max_tokens: int) -> Summary:
        transcript = "\n".join(f"{turn.role}: {turn.content}" for turn in turns)
        response = await self.model.request(
            [Message.system(self.instructions), Message.user(transcript)],
            ModelSettings(max_tokens=max_tokens, temperature=0.0),
            context=self.context,
        )
        return Summary(
            response.text.strip(), response.usage.input_tokens, response.usage.output_tokens
        )
