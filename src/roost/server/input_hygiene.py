"""Hostile JSON stops at the door: checked once, before any route parses or stores it.

Every JSON request body is parsed here under rules the rest of Roost can rely on:

* valid UTF-8 (the UTF-8 encoding of a surrogate, ``ED A0 80``, is not);
* no unpaired surrogate (``"\\ud800"``) and no NUL character in any string or key: neither
  survives a round trip through SQLite's FTS, PostgreSQL ``TEXT`` or a tokenizer;
* no ``NaN``, ``Infinity`` or ``-Infinity`` (not JSON, and poison to sampling and sorting);
* nesting no deeper than ``max_depth``: deeper documents were stored, then broke every
  later read of them.

The same rules hold for the query string and path. A violation is a 400 naming the field
(``messages[0].content``), in the dialect of the route (OpenAI, Anthropic, problem+json).
The body size is already capped by the body-limit middleware that runs before this one.
"""

from __future__ import annotations

import json
import math
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from roost.errors import InvalidRequest, RoostError
from roost.server.middleware import ASGIApp, Message, Receive, Scope, Send, send_error

DEFAULT_MAX_DEPTH = 64
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _NonFinite:
    """What ``NaN``/``Infinity`` parse to here, so the walk can say which field held one."""

    def __init__(self, spelling: str) -> None:
        self.spelling = spelling


def check_json(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """:class:`InvalidRequest` naming the field unless ``raw`` is JSON Roost accepts."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        document = json.loads(text, parse_constant=_NonFinite)
    except RecursionError as exc:
        raise InvalidRequest(f"the body nests deeper than {max_depth} levels") from exc
    except ValueError:
        return  # not JSON at all: the route's own parser answers that in its own words
    check_value(document, max_depth=max_depth)


def check_value(document: Any, *, max_depth: int = DEFAULT_MAX_DEPTH, root: str = "") -> None:
    """Walk ``document`` (iteratively: depth is what is being checked) for the rules above."""
    stack: list[tuple[Any, str, int]] = [(document, root, 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, where or "body")
        elif isinstance(value, _NonFinite) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise InvalidRequest(
                f"{where or 'body'} is not a finite number; JSON has no NaN or Infinity",
                param=where or None,
            )
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise InvalidRequest(
                    f"{where or 'body'} nests deeper than {max_depth} levels", param=where or None
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, f"{where}.{key!r}" if where else repr(key))
                child = f"{where}[{key}]" if isinstance(key, int) else _field(where, key)
                stack.append((item, child, depth + 1))


def _field(parent: str, key: str) -> str:
    printable = key if key.isidentifier() else json.dumps(key)
    return f"{parent}.{printable}" if parent else printable


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise InvalidRequest(f"{where} contains a NUL character", param=where)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(
            f"{where} contains an unpaired surrogate (\\u{ord(text[exc.start]):04x})", param=where
        ) from exc


def _is_json(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            media = value.decode("latin-1").split(";")[0].strip().lower()
            return media == "application/json" or media.endswith("+json")
    return True  # FastAPI reads a body without a content type as JSON


class InputHygieneMiddleware:
    """Checks the path, query and JSON body of every request against the rules above."""

    def __init__(self, app: ASGIApp, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            _check_text(scope.get("path", ""), "path")
            query = scope.get("query_string", b"").decode("latin-1")
            for name, value in parse_qsl(query, keep_blank_values=True, errors="strict"):
                _check_text(name, "query")
                _check_text(value, f"query parameter {name}")
        except UnicodeDecodeError:
            await self._refuse(scope, send, InvalidRequest("the query is not valid UTF-8"))
            return
        except InvalidRequest as exc:
            await self._refuse(scope, send, exc)
            return
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        try:
            body, replay = await _read_body(receive)  # the body limit applies while reading
            check_json(body, max_depth=self.max_depth)
        except RoostError as exc:
            await send_error(send, scope, exc)
            return
        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, error: InvalidRequest) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": error.message[:120]})
            return
        await send_error(send, scope, error)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that hands it to the app once more."""
    chunks: list[bytes] = []
    extra: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            extra.append(message)  # a disconnect: passed on after the body
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    pending: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": body, "more_body": False},
        *extra,
    ]

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return body, replay
