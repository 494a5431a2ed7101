"""The ``Model`` protocol every provider implements, and helpers shared by providers.

A model is one ``provider:model`` deployment with its credentials bound in: Pydantic AI's
split of wire format (the provider module) from endpoint and key (``ProviderConfig``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from roost.llm.messages import (
    FinishReason,
    Message,
    ModelSettings,
    Part,
    Response,
    ResponseDone,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolDefinition,
    Usage,
)

NO_SETTINGS = ModelSettings()


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who a call is for; passed through to providers that use it (the local engine keys its
    per-agent KV cache by ``cache_identity``) and to usage records."""

    tenant_id: str
    key_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    cache_identity: str | None = None


@runtime_checkable
class Model(Protocol):
    """A model that answers a conversation, whole or as a stream of events.

    ``request_stream`` yields :class:`TextDelta` / :class:`ToolCallDelta` events and ends
    with exactly one :class:`ResponseDone` carrying what ``request`` would have returned.
    Failures raise :class:`roost.llm.errors.ProviderError` subclasses.
    """

    @property
    def model_id(self) -> str:
        """The full ``provider:model`` id."""
        ...

    async def request(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> Response: ...

    def request_stream(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]: ...


def split_model_id(model_id: str) -> tuple[str, str]:
    """``"openai:gpt-4.1-mini"`` → ``("openai", "gpt-4.1-mini")``; the model part may hold colons."""
    provider, sep, name = model_id.partition(":")
    if not sep or not provider or not name:
        raise ValueError(f"model id {model_id!r} is not of the form 'provider:model'")
    return provider, name


@dataclass(slots=True)
class _ToolCallBuffer:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StreamAccumulator:
    """Builds the final :class:`Response` from stream events, for providers and the router."""

    model_id: str
    text: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCallBuffer] = field(default_factory=dict)

    def add(self, event: TextDelta | ToolCallDelta) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
            return
        buffer = self.tool_calls.setdefault(event.index, _ToolCallBuffer())
        if event.id:
            buffer.id = event.id
        if event.name:
            buffer.name = event.name
        buffer.arguments.append(event.arguments)

    def finish(
        self, finish_reason: FinishReason, usage: Usage, response_id: str | None = None
    ) -> ResponseDone:
        parts: list[Part] = []
        if self.text:
            parts.append(TextPart("".join(self.text)))
        for index in sorted(self.tool_calls):
            call = self.tool_calls[index]
            parts.append(
                ToolCallPart(call.id or f"call_{index}", call.name, "".join(call.arguments))
            )
        if self.tool_calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        message = Message("assistant", tuple(parts))
        return ResponseDone(Response(message, finish_reason, usage, self.model_id, response_id))


def response_events(response: Response) -> list[StreamEvent]:
    """A finished response replayed as stream events (cache hits, non-streaming models)."""
    events: list[StreamEvent] = []
    index = 0
    for part in response.message.parts:
        if isinstance(part, TextPart) and part.text:
            events.append(TextDelta(part.text))
        elif isinstance(part, ToolCallPart):
            events.append(ToolCallDelta(index, part.id, part.name, part.arguments))
            index += 1
    events.append(ResponseDone(response))
    return events
