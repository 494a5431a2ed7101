"""Plain-prompt completions (OpenAI's legacy /v1/completions): text in, text out, with no
chat template, every prompt and sample generated in one batch."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from roost.engine.sampling_params import SamplingParams
from roost.errors import InvalidRequest
from roost.llm.messages import Usage

Prompt = str | list[int]  # text, or token ids as they are


@dataclass(slots=True)
class TextChoice:
    text: str
    finish_reason: Literal["stop", "length"]


@dataclass(slots=True)
class TextCompletion:
    """``n`` choices per prompt, prompt by prompt; each prompt counts once in ``usage``."""

    model: str
    choices: list[TextChoice]
    usage: Usage


async def complete_text(
    engine: Any, prompts: list[Prompt], sampling: SamplingParams, *, n: int, echo: bool
) -> TextCompletion:
    """``n`` samples of each prompt; with ``echo`` a text prompt leads its choices' text."""
    # n samples of one prompt differ by seed, reproducibly when a seed is given.
    params = [
        dataclasses.replace(sampling, seed=None if sampling.seed is None else sampling.seed + i)
        for _ in prompts
        for i in range(n)
    ]
    batch = [
        engine.tokenizer.encode(p) if isinstance(p, str) else p for p in prompts for _ in range(n)
    ]
    if any(len(ids) >= engine.context_length for ids in batch):
        raise InvalidRequest(
            f"a prompt is longer than this model's context of {engine.context_length} tokens",
            param="prompt",
        )
    # generate() batches every prompt together and blocks: run it off the event loop.
    outputs = await asyncio.to_thread(engine.generate, batch, params)
    choices = []
    for index, output in enumerate(outputs):
        prompt = prompts[index // n]
        lead = prompt if echo and isinstance(prompt, str) else ""
        reason: Literal["stop", "length"] = "length" if output.finish_reason == "length" else "stop"
        choices.append(TextChoice(lead + output.text, reason))
    usage = Usage(
        input_tokens=sum(len(o.prompt_token_ids) for o in outputs[::n]),
        output_tokens=sum(o.usage.completion_tokens for o in outputs),
        cached_input_tokens=max((o.usage.cached_prompt_tokens for o in outputs), default=0),
    )
    return TextCompletion(engine.model_name, choices, usage)
