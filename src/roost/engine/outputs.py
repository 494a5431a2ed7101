"""What the engine hands back: streamed events and finished request outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.engine.sequence import Sequence, TokenLogprob
from roost.errors import RoostError


@dataclass(slots=True)
class EngineUsage:
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
class EngineEvent:
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
    usage: EngineUsage | None = None
    error: str | None = None


@dataclass(slots=True)
class RequestOutput:
    """A finished request, as returned by :meth:`Engine.generate`."""

    request_id: str
    prompt_token_ids: list[int]
    token_ids: list[int]
    text: str
    finish_reason: str
    usage: EngineUsage
    logprobs: list[TokenLogprob] = field(default_factory=list)
    stop_reason: str | int | None = None


def usage_of(seq: Sequence) -> EngineUsage:
    """Counts and timings of a sequence that has just finished."""
    finish = seq.finish_time if seq.finish_time is not None else seq.arrival_time
    first = seq.first_token_time
    return EngineUsage(
        prompt_tokens=seq.num_prompt_tokens,
        cached_prompt_tokens=seq.num_cached_prompt_tokens,
        completion_tokens=seq.num_output_tokens,
        time_to_first_token_s=None if first is None else first - seq.arrival_time,
        decode_time_s=0.0 if first is None else finish - first,
        total_time_s=finish - seq.arrival_time,
        num_preemptions=seq.num_preemptions,
    )


def assemble_output(
    request_id: str, prompt_ids: list[int], events: list[EngineEvent]
) -> RequestOutput:
    """Join a finished request's events; a request that failed raises its error."""
    last = events[-1]
    if last.finish_reason == "error":
        raise RoostError(f"request {request_id} failed: {last.error}")
    assert last.usage is not None
    assert last.finish_reason is not None
    return RequestOutput(
        request_id=request_id,
        prompt_token_ids=prompt_ids,
        token_ids=[t for e in events for t in e.token_ids],
        text="".join(e.text for e in events),
        finish_reason=last.finish_reason,
        usage=last.usage,
        logprobs=[lp for e in events for lp in e.logprobs],
        stop_reason=last.stop_reason,
    )
