"""Plain-prompt completions (OpenAI's legacy /v1/completions): text in, text out, with no
chat template, every prompt and sample generated in one batch."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from roost.engine.outputs import EngineUsage
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


def tokenized(engine: Any, prompts: list[Prompt]) -> list[list[int]]:
    """Each prompt as token ids, refused (400) when it leaves no room for a reply."""
    batch = [engine.tokenizer.encode(p) if isinstance(p, str) else list(p) for p in prompts]
    if any(len(ids) >= engine.context_length for ids in batch):
        raise InvalidRequest(
            f"a prompt is longer than this model's context of {engine.context_length} tokens",
            param="prompt",
        )
    return batch


async def complete_text(
    engine: Any,
    prompts: list[Prompt],
    sampling: SamplingParams,
    *,
    n: int,
    echo: bool,
    tenant_id: str | None = None,
) -> TextCompletion:
    """``n`` samples of each prompt; with ``echo`` a text prompt leads its choices' text.

    Every sample streams from the engine on this loop, so cancelling the call (a client
    that left) cancels them all at once and frees their slots."""
    batch = tokenized(engine, prompts)
    # n samples of one prompt differ by seed, reproducibly when a seed is given.
    runs = [
        _sample(
            engine, ids,
            dataclasses.replace(sampling, seed=None if sampling.seed is None else sampling.seed + i),
            tenant_id,
        )
        for ids in batch
        for i in range(n)
    ]  # fmt: skip
    outputs = await asyncio.gather(*runs)
    choices = []
    for index, (text, reason, _) in enumerate(outputs):
        prompt = prompts[index // n]
        lead = prompt if echo and isinstance(prompt, str) else ""
        choices.append(TextChoice(lead + text, "length" if reason == "length" else "stop"))
    usage = Usage(
        input_tokens=sum(len(ids) for ids in batch),
        output_tokens=sum(u.completion_tokens for _, _, u in outputs if u is not None),
        cached_input_tokens=max(
            (u.cached_prompt_tokens for _, _, u in outputs if u is not None), default=0
        ),
    )
    return TextCompletion(engine.model_name, choices, usage)


async def _sample(
    engine: Any, prompt: list[int], params: SamplingParams, tenant_id: str | None
) -> tuple[str, str | None, EngineUsage | None]:
    parts: list[str] = []
    async for event in engine.stream(prompt, params, tenant_id=tenant_id):
        parts.append(event.text)
        if event.finished:
            if event.finish_reason == "error":
                raise RuntimeError(event.error or "generation failed")
            return "".join(parts), event.finish_reason, event.usage
    raise RuntimeError("the engine ended the stream without finishing the request")
