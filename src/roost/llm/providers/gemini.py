"""Google Gemini through the official ``google-genai`` SDK (SDK retries off)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from roost.llm.base import NO_SETTINGS, RequestContext, StreamAccumulator
from roost.llm.messages import (
    FinishReason,
    ImagePart,
    Message,
    ModelSettings,
    Part,
    Response,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolDefinition,
    Usage,
)
from roost.llm.providers.errors import error_for_status, is_programming_error, unavailable

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
}


class GeminiModel:
    """One Gemini model."""

    def __init__(self, model_id: str, name: str, client: genai.Client, api_key: str) -> None:
        self._model_id = model_id
        self.name = name
        self.client = client
        self._secrets = (api_key,)

    @property
    def model_id(self) -> str:
        return self._model_id

    async def request(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> Response:
        contents, config = self._params(messages, settings, tools)
        try:
            reply = await self.client.aio.models.generate_content(
                model=self.name, contents=contents, config=config
            )
        except genai_errors.APIError as exc:
            raise self._error(exc) from exc
        except Exception as exc:
            if is_programming_error(exc):
                raise
            raise unavailable(exc, deployment=self._model_id, secrets=self._secrets) from exc
        acc = StreamAccumulator(self._model_id)
        finish = _collect(reply, acc, {})
        return acc.finish(finish, _usage(reply.usage_metadata), reply.response_id).response

    async def request_stream(
        self,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]:
        contents, config = self._params(messages, settings, tools)
        acc = StreamAccumulator(self._model_id)
        finish: FinishReason = "stop"
        usage = Usage()
        response_id: str | None = None
        calls: dict[str, int] = {}
        try:
            stream = await self.client.aio.models.generate_content_stream(
                model=self.name, contents=contents, config=config
            )
            async for chunk in stream:
                response_id = response_id or chunk.response_id
                if chunk.usage_metadata is not None:
                    usage = _usage(chunk.usage_metadata)
                seen = len(acc.text), len(acc.tool_calls)
                finish = _collect(chunk, acc, calls, finish)
                for text in acc.text[seen[0] :]:
                    yield TextDelta(text)
                for index in range(seen[1], len(acc.tool_calls)):
                    call = acc.tool_calls[index]
                    yield ToolCallDelta(index, call.id, call.name, "".join(call.arguments))
        except genai_errors.APIError as exc:
            raise self._error(exc) from exc
        except Exception as exc:
            if is_programming_error(exc):
                raise
            raise unavailable(exc, deployment=self._model_id, secrets=self._secrets) from exc
        yield acc.finish(finish, usage, response_id)

    def _params(
        self, messages: Sequence[Message], settings: ModelSettings, tools: Sequence[ToolDefinition]
    ) -> tuple[list[types.Content], types.GenerateContentConfig]:
        system, contents = to_gemini_contents(messages)
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_output_tokens=settings.max_tokens,
            stop_sequences=list(settings.stop) or None,
            seed=settings.seed,
            # Roost runs tools itself; the SDK must never call Python functions on its own.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        if tools:
            config.tools = [
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name=t.name,
                            description=t.description,
                            parameters_json_schema=t.parameters,
                        )
                        for t in tools
                    ]
                )
            ]
            if settings.tool_choice:
                config.tool_config = types.ToolConfig(
                    function_calling_config=_calling(settings.tool_choice)
                )
        if settings.timeout_s is not None:
            config.http_options = types.HttpOptions(timeout=int(settings.timeout_s * 1000))
        return contents, config

    def _error(self, exc: genai_errors.APIError) -> Exception:
        return error_for_status(
            int(exc.code or 500),
            str(exc.message or exc),
            deployment=self._model_id,
            secrets=self._secrets,
        )


def _calling(choice: str) -> types.FunctionCallingConfig:
    if choice in ("auto", "none"):
        return types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode(choice.upper()))
    if choice == "required":
        return types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
    return types.FunctionCallingConfig(
        mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=[choice]
    )


def _collect(
    reply: types.GenerateContentResponse,
    acc: StreamAccumulator,
    calls: dict[str, int],
    finish: FinishReason = "stop",
) -> FinishReason:
    """Add one response (or stream chunk) to ``acc``; return the finish reason so far."""
    for candidate in (reply.candidates or [])[:1]:
        for part in (candidate.content.parts if candidate.content else None) or []:
            if part.text and not part.thought:
                acc.add(TextDelta(part.text))
            elif part.function_call is not None:
                call = part.function_call
                index = len(acc.tool_calls)
                call_id = call.id or f"call_{index}"
                calls[call_id] = index
                arguments = json.dumps(call.args or {}, separators=(",", ":"))
                acc.add(ToolCallDelta(index, call_id, call.name or "", arguments))
        if candidate.finish_reason is not None:
            finish = _FINISH.get(str(candidate.finish_reason.value), "stop")
    return finish


def to_gemini_contents(messages: Sequence[Message]) -> tuple[str, list[types.Content]]:
    """(system instruction, contents) in Gemini shape."""
    system: list[str] = []
    names: dict[str, str] = {}  # tool-call id → function name: Gemini answers by name
    contents: list[types.Content] = []
    for message in messages:
        if message.role == "system":
            system.append(message.text)
            continue
        role = "model" if message.role == "assistant" else "user"
        parts = [p for p in (_part(p, names) for p in message.parts) if p is not None]
        if not parts:
            continue
        if contents and contents[-1].role == role and contents[-1].parts is not None:
            contents[-1].parts.extend(parts)
        else:
            contents.append(types.Content(role=role, parts=parts))
    return "\n\n".join(system), contents


def _part(part: Part, names: dict[str, str]) -> types.Part | None:
    if isinstance(part, TextPart):
        return types.Part(text=part.text) if part.text else None
    if isinstance(part, ImagePart):
        return types.Part(
            file_data=types.FileData(file_uri=part.url, mime_type=part.media_type or "image/*")
        )
    if isinstance(part, ToolCallPart):
        names[part.id] = part.name
        return types.Part(
            function_call=types.FunctionCall(
                id=part.id, name=part.name, args=part.parsed_arguments()
            )
        )
    else:
        name = part.name or names.get(part.tool_call_id, "tool")
        key = "error" if part.is_error else "output"
        return types.Part(
            function_response=types.FunctionResponse(
                id=part.tool_call_id, name=name, response={key: part.content}
            )
        )


def _usage(meta: types.GenerateContentResponseUsageMetadata | None) -> Usage:
    if meta is None:
        return Usage()
    return Usage(
        input_tokens=meta.prompt_token_count or 0,
        output_tokens=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
        cached_input_tokens=meta.cached_content_token_count or 0,
    )


__all__ = ["GeminiModel", "to_gemini_contents"]
