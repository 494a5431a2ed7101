"""Test helpers: a fake clock and a model that follows a script of outcomes."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from roost.llm.base import NO_SETTINGS, RequestContext, response_events
from roost.llm.errors import ProviderError
from roost.llm.messages import (
    Message,
    ModelSettings,
    Response,
    StreamEvent,
    TextDelta,
    ToolDefinition,
    Usage,
)


@dataclass
class FakeClock:
    """Time that moves only when someone sleeps (or a test advances it)."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Outcome:
    error: ProviderError | None = None
    text: str = "ok"
    tokens_before_error: int = 0  # streams: text pieces sent before ``error``
    takes_s: float = 0.0


class ScriptedModel:
    """Follows ``outcomes`` in order (then answers ``default_text``); counts its calls."""

    def __init__(
        self,
        model_id: str,
        *outcomes: Outcome,
        clock: FakeClock | None = None,
        default_text: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        self._model_id = model_id
        self.outcomes = deque(outcomes)
        self.clock = clock
        self.default_text = default_text or f"from {model_id}"
        self.usage = usage or Usage(10, 5)
        self.num_calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    def fail(self, error: ProviderError, times: int = 1) -> None:
        self.outcomes.extend(Outcome(error) for _ in range(times))

    def _next(self) -> Outcome:
        self.num_calls += 1
        outcome = self.outcomes.popleft() if self.outcomes else Outcome(text=self.default_text)
        if self.clock is not None:
            self.clock.advance(outcome.takes_s)
        return outcome

    def _response(self, text: str) -> Response:
        return Response(Message.assistant(text), "stop", self.usage, self._model_id)

    async def request(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> Response:
        outcome = self._next()
        if outcome.error is not None:
            raise outcome.error
        return self._response(outcome.text)

    async def request_stream(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]:
        outcome = self._next()
        if outcome.error is not None:
            for i in range(outcome.tokens_before_error):
                yield TextDelta(f"t{i} ")
            raise outcome.error
        for event in response_events(self._response(outcome.text)):
            yield event
