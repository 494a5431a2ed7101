"""The provider-neutral shapes of a chat request on the local engine and of its results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from roost.engine.outputs import EngineUsage
from roost.engine.sampling_params import SamplingParams
from roost.engine.sequence import TokenLogprob

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "stop_sequence", "cancelled", "error"]


@dataclass(slots=True)
class ToolCall:
    """A call the model made: ``arguments`` is the exact JSON text it generated."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # on tool results: the call answered
    name: str | None = None  # on tool results: the tool's name, when known
    is_error: bool = False  # on tool results: the tool failed


@dataclass(slots=True, frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True, frozen=True)
class ToolChoice:
    """``auto`` (text or calls), ``none`` (text only), ``required`` (calls only), or one tool."""

    mode: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None


@dataclass(slots=True, frozen=True)
class ResponseFormat:
    """Text replies must be a JSON object (``schema`` None) or match ``schema``."""

    schema: dict[str, Any] | None = None


@dataclass(slots=True)
class ChatRequest:
    messages: list[Message]
    sampling: SamplingParams
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    n: int = 1
    session_id: str | None = None  # the caller's cache identity (agent, thread, conversation)
    tenant_id: str | None = None


@dataclass(slots=True)
class Choice:
    index: int
    text: str
    tool_calls: list[ToolCall]
    finish_reason: FinishReason
    stop_sequence: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass(slots=True)
class ChatUsage:
    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int

    @classmethod
    def total(cls, prompt_tokens: int, usages: list[EngineUsage]) -> ChatUsage:
        # n choices share one prompt: it is counted once, as OpenAI does.
        return cls(
            prompt_tokens=prompt_tokens,
            cached_prompt_tokens=max((u.cached_prompt_tokens for u in usages), default=0),
            completion_tokens=sum(u.completion_tokens for u in usages),
        )


@dataclass(slots=True)
class ChatResult:
    id: str
    model: str
    created: int
    choices: list[Choice]
    usage: ChatUsage


# -- streaming events, in order per choice: deltas, then ChoiceFinished; UsageReport last --


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass(slots=True)
class ToolCallStarted:
    index: int
    call_index: int
    id: str
    name: str


@dataclass(slots=True)
class ToolCallArgumentsDelta:
    index: int
    call_index: int
    delta: str


@dataclass(slots=True)
class ChoiceFinished:
    index: int
    finish_reason: FinishReason
    stop_sequence: str | None = None
    error: str | None = None


@dataclass(slots=True)
class UsageReport:
    usage: ChatUsage


ChatEvent = TextDelta | ToolCallStarted | ToolCallArgumentsDelta | ChoiceFinished | UsageReport
