"""What the engine hands back: streamed events and finished request outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.engine.sequence import TokenLogprob


@dataclass(slots=True)
class Usage:
    """Token counts and timings of one request (reported when it finishes)."""

    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float | None
    decode_time_s: float  # first token to last token
    total_time_s: float
    num_preemptions: int = 0

    @property
    def decode_tokens_per_s(self) -> float:
        steps = self.completion_tokens - 1
        return steps / self.decode_time_s if steps > 0 and self.decode_time_s > 0 else 0.0


@dataclass(slots=True)
class StreamEvent:
    """New output of one request since its previous event.

    ``text`` is a delta and never contains (part of) a stop string. The last event of a
    request has ``finished=True``, a ``finish_reason`` (``stop``, ``length``, ``cancelled``
    or ``error``) and ``usage``; ``error`` carries the message when the reason is ``error``.
    """

    request_id: str
    token_ids: list[int]
    text: str
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finished: bool = False
    finish_reason: str | None = None
    stop_reason: str | int | None = None  # the stop string or token id that ended it
    usage: Usage | None = None
    error: str | None = None


@dataclass(slots=True)
class RequestOutput:
    """A finished request, as returned by :meth:`Engine.generate`."""

    request_id: str
    prompt_token_ids: list[int]
    token_ids: list[int]
    text: str
    finish_reason: str
    usage: Usage
    logprobs: list[TokenLogprob] = field(default_factory=list)
    stop_reason: str | int | None = None
