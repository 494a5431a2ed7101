"""OpenAI request bodies (chat completions, completions) and their translation to Roost's."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from roost.chat import ChatRequest, ResponseFormat, ToolChoice
from roost.engine.sampling_params import SamplingParams
from roost.errors import InvalidRequest
from roost.llm.messages import Message, ToolCallPart, ToolDefinition

# Parameters Roost does not implement whose silent omission would change the answer.
UNSUPPORTED = {
    "logit_bias": "logit_bias is not supported",
    "functions": "the legacy 'functions' parameter is not supported; use 'tools'",
    "function_call": "the legacy 'function_call' parameter is not supported; use 'tool_choice'",
    "audio": "audio output is not supported",
    "modalities": "only text output is supported",
    "prediction": "predicted outputs are not supported",
    "web_search_options": "web search is not supported",
}


class Lenient(BaseModel):
    # Unknown fields are accepted (clients send new ones all the time) and checked by name.
    model_config = ConfigDict(extra="allow")


class ContentPart(Lenient):
    type: str
    text: str | None = None


class FunctionCallIn(Lenient):
    name: str
    arguments: str = "{}"


class ToolCallIn(Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class FunctionSpecIn(Lenient):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(Lenient):
    type: Literal["function"]
    function: FunctionSpecIn


class NamedFunction(Lenient):
    name: str


class NamedToolChoice(Lenient):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaSpec(Lenient):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class StreamOptions(Lenient):
    include_usage: bool = False


class SamplingFields(Lenient):
    """Fields shared by chat completions and completions."""

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)  # also the cache session, without a header
    # Extensions that vLLM and llama.cpp servers also accept.
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    ignore_eos: bool = False
    session_id: str | None = Field(None, max_length=256)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 16:
            raise ValueError("at most 16 stop sequences")
        return value

    def refuse_unsupported(self) -> None:
        for name, reason in UNSUPPORTED.items():
            if (self.model_extra or {}).get(name) is not None:
                raise InvalidRequest(reason, param=name)

    def sampling(
        self, *, max_tokens: int | None, logprobs: bool, top_logprobs: int
    ) -> SamplingParams:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            top_k=self.top_k or 0,
            min_p=self.min_p or 0.0,
            repetition_penalty=self.repetition_penalty or 1.0,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            seed=self.seed,
            stop=tuple(s for s in stop if s),
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            ignore_eos=self.ignore_eos,
        )


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[ToolIn] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormatIn | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    metadata: dict[str, str] | None = None

    def to_chat_request(self, *, tenant_id: str, session_id: str | None) -> ChatRequest:
        self.refuse_unsupported()
        if self.top_logprobs and not self.logprobs:
            raise InvalidRequest("top_logprobs needs logprobs: true", param="top_logprobs")
        sampling = self.sampling(
            max_tokens=self.max_completion_tokens or self.max_tokens,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs or 0,
        )
        return ChatRequest(
            messages=[_message(m, i) for i, m in enumerate(self.messages)],
            sampling=sampling,
            tools=[
                ToolDefinition(t.function.name, t.function.description, t.function.parameters or {})
                for t in self.tools or []
            ],
            tool_choice=_tool_choice(self.tool_choice, has_tools=bool(self.tools)),
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=_response_format(self.response_format),
            n=self.n,
            session_id=session_id or self.session_id,
            tenant_id=tenant_id,
        )


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] = Field(min_length=1)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)
    suffix: str | None = None
    best_of: int | None = None

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.suffix:
            raise InvalidRequest("suffix (fill-in-the-middle) is not supported", param="suffix")
        if self.best_of not in (None, 1, self.n):
            raise InvalidRequest("best_of other than n is not supported", param="best_of")


def _text(content: str | list[ContentPart] | None, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for position, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise InvalidRequest(
                f"content part type {part.type!r} is not supported; send text parts",
                param=f"{where}.content[{position}]",
            )
        texts.append(part.text)
    return "".join(texts)


def _message(message: ChatMessageIn, index: int) -> Message:
    where = f"messages[{index}]"
    content = _text(message.content, where)
    if message.role == "tool":
        if not message.tool_call_id:
            raise InvalidRequest("tool messages need tool_call_id", param=f"{where}.tool_call_id")
        return Message.tool_result(message.tool_call_id, content, name=message.name)
    if message.role == "assistant":
        calls = []
        for position, call in enumerate(message.tool_calls or []):
            try:
                json.loads(call.function.arguments)
            except json.JSONDecodeError:
                raise InvalidRequest(
                    "tool call arguments must be a JSON string",
                    param=f"{where}.tool_calls[{position}].function.arguments",
                ) from None
            calls.append(ToolCallPart(call.id, call.function.name, call.function.arguments))
        return Message.turn("assistant", content, calls)
    role = "system" if message.role == "developer" else message.role
    return Message.turn(role, content)


def _tool_choice(
    choice: Literal["auto", "none", "required"] | NamedToolChoice | None, *, has_tools: bool
) -> ToolChoice:
    if isinstance(choice, NamedToolChoice):
        return ToolChoice("named", choice.function.name)
    if choice is None:
        return ToolChoice("auto" if has_tools else "none")
    return ToolChoice(choice)


def _response_format(spec: ResponseFormatIn | None) -> ResponseFormat | None:
    if spec is None or spec.type == "text":
        return None
    if spec.type == "json_object":
        return ResponseFormat(None)
    if spec.json_schema is None or spec.json_schema.schema_ is None:
        raise InvalidRequest(
            "response_format json_schema needs json_schema.schema", param="response_format"
        )
    return ResponseFormat(spec.json_schema.schema_)
