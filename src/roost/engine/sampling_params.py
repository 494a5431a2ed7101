"""Per-request sampling and stopping parameters, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roost.errors import InvalidRequest

MAX_TOP_LOGPROBS = 20


@dataclass(slots=True, frozen=True)
class StructuredOutput:
    """A grammar the output must follow: exactly one of the fields is set.

    ``tool_calls`` is a list of OpenAI-style tool definitions
    (``{"type": "function", "function": {"name", "parameters"}}`` or just the inner
    function objects); the output is then a JSON object ``{"name": ..., "arguments": {...}}``
    for one of them.
    """

    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    regex: str | None = None
    lark: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        chosen = [
            self.json_schema is not None,
            self.json_object,
            self.regex is not None,
            self.lark is not None,
            self.tool_calls is not None,
        ]
        if sum(chosen) != 1:
            raise InvalidRequest(
                "structured output needs exactly one of json_schema, json_object, regex, lark, "
                "tool_calls",
                param="response_format",
            )
        if self.tool_calls is not None and not self.tool_calls:
            raise InvalidRequest("tool_calls must list at least one tool", param="tools")


@dataclass(slots=True, frozen=True)
class SamplingParams:
    """How to pick tokens and when to stop. Defaults: greedy-free sampling at temperature 1."""

    max_tokens: int | None = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] | list[str] | str = ()  # normalised to a tuple
    stop_token_ids: tuple[int, ...] | list[int] = ()
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False
    logprobs: bool = False
    top_logprobs: int = 0
    skip_special_tokens: bool = True
    structured: StructuredOutput | None = None

    def __post_init__(self) -> None:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        object.__setattr__(self, "stop", stop)
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
        _check(self.max_tokens is None or self.max_tokens >= 1, "max_tokens", "must be at least 1")
        _check(0.0 <= self.temperature <= 100.0, "temperature", "must be between 0 and 100")
        _check(0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]")
        _check(self.top_k >= 0, "top_k", "must be 0 (off) or positive")
        _check(0.0 <= self.min_p <= 1.0, "min_p", "must be between 0 and 1")
        _check(0.0 < self.repetition_penalty <= 10.0, "repetition_penalty", "must be in (0, 10]")
        _check(-2.0 <= self.presence_penalty <= 2.0, "presence_penalty", "must be in [-2, 2]")
        _check(-2.0 <= self.frequency_penalty <= 2.0, "frequency_penalty", "must be in [-2, 2]")
        _check(
            0 <= self.top_logprobs <= MAX_TOP_LOGPROBS,
            "top_logprobs",
            f"must be between 0 and {MAX_TOP_LOGPROBS}",
        )
        _check(
            self.top_logprobs == 0 or self.logprobs,
            "top_logprobs",
            "needs logprobs to be enabled",
        )
        _check(len(stop) <= 16, "stop", "at most 16 stop strings")
        _check(all(s for s in stop), "stop", "stop strings must not be empty")
        _check(all(t >= 0 for t in self.stop_token_ids), "stop_token_ids", "must be >= 0")
        _check(self.seed is None or 0 <= self.seed < 2**63, "seed", "must be between 0 and 2**63-1")

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return tuple(self.stop)

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1

    @property
    def has_penalties(self) -> bool:
        return (
            self.repetition_penalty != 1.0
            or self.presence_penalty != 0.0
            or self.frequency_penalty != 0.0
        )


def _check(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise InvalidRequest(f"{param} {message}", param=param)
