"""A scriptable upstream that speaks the OpenAI, Anthropic and Gemini wire formats.

Served by uvicorn on loopback in a thread, so provider tests run the real SDKs over
real HTTP. Each test pushes the actions the next requests should meet: answer, fail
with a status (and retry-after), hang, break a stream half way, or send garbage.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.support.servers import free_port


@dataclass
class Action:
    """What the upstream does with one request."""

    kind: str = "ok"  # ok | status | hang | break_stream | malformed | tool_call
    text: str | None = None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    tool_name: str = ""
    tool_args: dict[str, Any] = field(default_factory=dict)


def ok(text: str | None = None) -> Action:
    return Action("ok", text=text)


def status(code: int, **headers: str) -> Action:
    return Action(
        "status", status=code, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def hang(seconds: float) -> Action:
    return Action("hang", seconds=seconds)


def break_stream(text: str = "partial answer then") -> Action:
    return Action("break_stream", text=text)


def malformed() -> Action:
    return Action("malformed")


def tool_call(name: str, **args: Any) -> Action:
    return Action("tool_call", tool_name=name, tool_args=args)


@dataclass
class Seen:
    dialect: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class MockUpstream:
    """The app plus its script and the requests it has received."""

    def __init__(self) -> None:
        self.script: deque[Action] = deque()
        self.seen: list[Seen] = []
        self.app = self._build()
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def push(self, *actions: Action) -> None:
        self.script.extend(actions)

    def reset(self) -> None:
        self.script.clear()
        self.seen.clear()

    def start(self) -> None:
        port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="error", loop="asyncio", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("mock upstream did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def _next(self) -> Action:
        return self.script.popleft() if self.script else ok()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def openai_chat(request: Request) -> Response:
            body = await self._record("openai", request)
            return await self._respond(OPENAI, body, self._next())

        @app.post("/v1/messages")
        async def anthropic_messages(request: Request) -> Response:
            body = await self._record("anthropic", request)
            return await self._respond(ANTHROPIC, body, self._next())

        @app.post("/v1beta/models/{model_method}")
        @app.post("/v1/models/{model_method}")
        async def gemini(model_method: str, request: Request) -> Response:
            body = await self._record("gemini", request)
            streaming = model_method.endswith(":streamGenerateContent")
            body["stream"] = streaming
            return await self._respond(GEMINI, body, self._next())

        return app

    async def _record(self, dialect: str, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append(Seen(dialect, request.url.path, headers, body))
        return body

    async def _respond(self, dialect: Dialect, body: dict[str, Any], action: Action) -> Response:
        if action.kind == "status":
            error = {"error": {"message": f"injected {action.status}", "type": "injected"}}
            if dialect is ANTHROPIC:
                error = {"type": "error", "error": {"type": "api_error", "message": "injected"}}
            return JSONResponse(error, status_code=action.status, headers=action.headers)
        if action.kind == "hang":
            await asyncio.sleep(action.seconds)
        text = action.text if action.text is not None else f"echo: {dialect.last_user(body)}"
        input_tokens = dialect.input_tokens(body)
        if body.get("stream"):
            return StreamingResponse(
                dialect.stream(body, text, action, input_tokens), media_type="text/event-stream"
            )
        return JSONResponse(dialect.whole(body, text, action, input_tokens))


def words(text: str) -> int:
    return len(text.split())


class Dialect:
    name = ""

    def last_user(self, body: dict[str, Any]) -> str:
        raise NotImplementedError

    def input_tokens(self, body: dict[str, Any]) -> int:
        return words(json.dumps(body.get("messages", body.get("contents", []))))

    def whole(self, body: dict[str, Any], text: str, action: Action, n_in: int) -> dict[str, Any]:
        raise NotImplementedError

    def stream(
        self, body: dict[str, Any], text: str, action: Action, n_in: int
    ) -> AsyncIterator[bytes]:
        raise NotImplementedError


def _pieces(text: str) -> Iterator[str]:
    parts = text.split(" ")
    for i, part in enumerate(parts):
        yield part if i == 0 else " " + part


class _OpenAI(Dialect):
    name = "openai"

    def last_user(self, body: dict[str, Any]) -> str:
        users = [m for m in body["messages"] if m["role"] == "user"]
        content = users[-1]["content"] if users else ""
        return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)

    def whole(self, body: dict[str, Any], text: str, action: Action, n_in: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        if action.kind == "tool_call":
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": action.tool_name,
                            "arguments": json.dumps(action.tool_args),
                        },
                    }
                ],
            }
            finish = "tool_calls"
        return {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": n_in,
                "completion_tokens": words(text),
                "total_tokens": n_in + words(text),
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }

    async def stream(
        self, body: dict[str, Any], text: str, action: Action, n_in: int
    ) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
            payload = {
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
                if delta is not None
                else [],
                "usage": usage,
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        if action.kind == "malformed":
            yield b"data: {this is not json\n\n"
            return
        if action.kind == "tool_call":
            call = {"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": action.tool_name, "arguments": ""}}  # fmt: skip
            yield chunk({"tool_calls": [call]})
            args = json.dumps(action.tool_args)
            for half in (args[: len(args) // 2], args[len(args) // 2 :]):
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": half}}]})
            yield chunk({}, "tool_calls")
        else:
            for piece in _pieces(text):
                yield chunk({"content": piece})
                await asyncio.sleep(0)
            if action.kind == "break_stream":
                raise ConnectionResetError("upstream died mid-stream")
            yield chunk({}, "stop")
        usage = {
            "prompt_tokens": n_in,
            "completion_tokens": words(text),
            "total_tokens": n_in + words(text),
        }
        yield chunk(None, None, usage)  # type: ignore[arg-type]
        yield b"data: [DONE]\n\n"


class _Anthropic(Dialect):
    name = "anthropic"

    def last_user(self, body: dict[str, Any]) -> str:
        users = [m for m in body["messages"] if m["role"] == "user"]
        content = users[-1]["content"] if users else ""
        return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)

    def whole(self, body: dict[str, Any], text: str, action: Action, n_in: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        stop = "end_turn"
        if action.kind == "tool_call":
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": action.tool_name,
                    "input": action.tool_args,
                }
            ]
            stop = "tool_use"
        return {
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": n_in, "output_tokens": words(text)},
        }

    async def stream(
        self, body: dict[str, Any], text: str, action: Action, n_in: int
    ) -> AsyncIterator[bytes]:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        message = {"id": "msg_mock", "type": "message", "role": "assistant", "model": body["model"],
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": n_in, "output_tokens": 1}}  # fmt: skip
        yield event("message_start", {"message": message})
        if action.kind == "malformed":
            yield b"event: content_block_delta\ndata: {oops\n\n"
            return
        stop = "end_turn"
        if action.kind == "tool_call":
            block = {"type": "tool_use", "id": "toolu_1", "name": action.tool_name, "input": {}}
            yield event("content_block_start", {"index": 0, "content_block": block})
            args = json.dumps(action.tool_args)
            for half in (args[: len(args) // 2], args[len(args) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": half}
                yield event("content_block_delta", {"index": 0, "delta": delta})
            stop = "tool_use"
        else:
            yield event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            for piece in _pieces(text):
                yield event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
                await asyncio.sleep(0)
            if action.kind == "break_stream":
                raise ConnectionResetError("upstream died mid-stream")
        yield event("content_block_stop", {"index": 0})
        yield event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": words(text)}})  # fmt: skip
        yield event("message_stop", {})


class _Gemini(Dialect):
    name = "gemini"

    def last_user(self, body: dict[str, Any]) -> str:
        users = [c for c in body["contents"] if c.get("role") == "user"]
        return " ".join(p.get("text", "") for p in users[-1]["parts"]) if users else ""

    def _reply(
        self, text: str, action: Action, n_in: int, finish: str | None, n_out: int | None = None
    ) -> dict[str, Any]:
        n_out = words(text) if n_out is None else n_out
        part: dict[str, Any] = {"text": text}
        if action.kind == "tool_call":
            part = {"functionCall": {"name": action.tool_name, "args": action.tool_args}}
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {
            "candidates": [candidate],
            "usageMetadata": {"promptTokenCount": n_in, "candidatesTokenCount": n_out,
                              "totalTokenCount": n_in + n_out},
            "responseId": "gemini-mock",
        }  # fmt: skip

    def whole(self, body: dict[str, Any], text: str, action: Action, n_in: int) -> dict[str, Any]:
        return self._reply(text, action, n_in, "STOP")

    async def stream(
        self, body: dict[str, Any], text: str, action: Action, n_in: int
    ) -> AsyncIterator[bytes]:
        if action.kind == "tool_call":
            yield f"data: {json.dumps(self._reply('', action, n_in, 'STOP'))}\n\n".encode()
            return
        pieces = list(_pieces(text))
        for i, piece in enumerate(pieces):
            finish = "STOP" if i == len(pieces) - 1 and action.kind == "ok" else None
            # Gemini reports usage so far with every chunk.
            reply = self._reply(piece, Action(), n_in, finish, n_out=i + 1)
            yield f"data: {json.dumps(reply)}\n\n".encode()
            await asyncio.sleep(0)
        if action.kind == "break_stream":
            raise ConnectionResetError("upstream died mid-stream")


OPENAI = _OpenAI()
ANTHROPIC = _Anthropic()
GEMINI = _Gemini()
