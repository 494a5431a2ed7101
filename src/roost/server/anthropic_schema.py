"""Anthropic Messages request bodies and their translation to Roost's chat request."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from roost.chat import ChatRequest, ResponseFormat, ToolChoice
from roost.engine.sampling_params import SamplingParams
from roost.errors import InvalidRequest
from roost.llm.messages import Message, ToolCallPart, ToolDefinition


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class Block(Lenient):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    is_error: bool = False


class MessageIn(Lenient):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolIn(Lenient):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str = ""
    input_schema: dict[str, Any]


class ToolChoiceIn(Lenient):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class OutputFormat(Lenient):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(Lenient):
    format: OutputFormat | None = None
    effort: str | None = None  # how hard a reasoning model thinks; nothing to tune here


class Metadata(Lenient):
    user_id: str | None = Field(None, max_length=256)  # also the cache session, without a header


class CountTokensRequest(Lenient):
    model: str
    messages: list[MessageIn] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoiceIn | None = None
    output_config: OutputConfig | None = None

    def to_chat_request(
        self, sampling: SamplingParams, *, tenant_id: str, session_id: str | None
    ) -> ChatRequest:
        choice = self.tool_choice or ToolChoiceIn(type="auto")
        messages = [Message.turn("system", _system_text(self.system))] if self.system else []
        for index, message in enumerate(self.messages):
            messages.extend(_messages(message, index))
        return ChatRequest(
            messages=messages,
            sampling=sampling,
            tools=[ToolDefinition(t.name, t.description, t.input_schema) for t in self.tools or []],
            tool_choice=_tool_choice(choice, has_tools=bool(self.tools)),
            parallel_tool_calls=not choice.disable_parallel_tool_use,
            response_format=(
                ResponseFormat(self.output_config.format.schema_)
                if self.output_config and self.output_config.format
                else None
            ),
            session_id=session_id,
            tenant_id=tenant_id,
        )


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = Field(None, max_length=16)
    # Current SDKs no longer send sampling parameters; older clients and raw HTTP still do.
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    metadata: Metadata | None = None
    stream: bool = False

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            max_tokens=self.max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            top_k=self.top_k or 0,
            stop=tuple(s for s in self.stop_sequences or [] if s),
        )


def _system_text(system: str | list[Block] | None) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    return "\n\n".join(block.text or "" for block in system if block.type == "text")


def _block_text(content: str | list[Block] | None, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for position, block in enumerate(content):
        if block.type != "text":
            raise InvalidRequest(
                f"content block type {block.type!r} is not supported here; send text",
                param=f"{where}.content[{position}]",
            )
        parts.append(block.text or "")
    return "".join(parts)


def _messages(message: MessageIn, index: int) -> list[Message]:
    where = f"messages[{index}]"
    if isinstance(message.content, str):
        return [Message.turn(message.role, message.content)]
    texts: list[str] = []
    calls: list[ToolCallPart] = []
    results: list[Message] = []
    for position, block in enumerate(message.content):
        at = f"{where}.content[{position}]"
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "tool_use" and message.role == "assistant":
            if not block.id or not block.name:
                raise InvalidRequest("tool_use blocks need id and name", param=at)
            # The same separators the grammar generates, so the prompt re-renders token for token.
            arguments = json.dumps(block.input or {}, ensure_ascii=False)
            calls.append(ToolCallPart(block.id, block.name, arguments))
        elif block.type == "tool_result" and message.role == "user":
            if not block.tool_use_id:
                raise InvalidRequest("tool_result blocks need tool_use_id", param=at)
            results.append(
                Message.tool_result(
                    block.tool_use_id, _block_text(block.content, at), is_error=block.is_error
                )
            )
        elif block.type in ("thinking", "redacted_thinking"):
            continue  # local models here do not think in blocks; nothing to re-render
        else:
            raise InvalidRequest(
                f"content block type {block.type!r} is not supported in {message.role} messages",
                param=at,
            )
    if message.role == "assistant":
        return [Message.turn("assistant", "".join(texts), calls)]
    user_text = "".join(texts)
    return results + ([Message.turn("user", user_text)] if user_text or not results else [])


def _tool_choice(choice: ToolChoiceIn, *, has_tools: bool) -> ToolChoice:
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequest(
                "tool_choice of type 'tool' needs a name", param="tool_choice.name"
            )
        return ToolChoice("named", choice.name)
    if choice.type == "any":
        return ToolChoice("required")
    if choice.type == "none" or not has_tools:
        return ToolChoice("none")
    return ToolChoice("auto")
