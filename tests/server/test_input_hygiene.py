"""Hostile input against a real uvicorn server: 400 naming the field, in each API's format,
never a 500; the WebSocket handshake without a valid key is refused cleanly."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.uvicorn_thread import model_free_server

KEY = "hygiene-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with model_free_server(tmp_path_factory.mktemp("hygiene-home"), KEY) as url:
        yield url


def nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def post(url: str, raw: bytes) -> httpx.Response:
    headers = {**AUTH, "content-type": "application/json"}
    return httpx.post(url, content=raw, headers=headers, timeout=30)


CHAT = b'{"model": "m", "messages": [{"role": "user", "content": %s}]}'
HOSTILE = [
    ("escaped lone surrogate", CHAT % b'"\\ud800"', "messages[0].content", "surrogate"),
    ("raw surrogate bytes", CHAT % b'"\xed\xa0\x80"', None, "UTF-8"),
    ("NUL character", CHAT % b'"a\\u0000b"', "messages[0].content", "NUL"),
    ("NaN", b'{"model": "m", "temperature": NaN, "messages": []}', "temperature", "finite"),
    ("Infinity", b'{"model": "m", "top_p": -Infinity, "messages": []}', "top_p", "finite"),
    ("overflowing number", b'{"model": "m", "temperature": 1e999}', "temperature", "finite"),
    (
        "deep nesting",
        json.dumps({"model": "m", "metadata": nested(300)}).encode(),
        "metadata" + ".k" * 63,
        "deeper",
    ),
    ("very deep nesting", b"[" * 100_000 + b"]" * 100_000, None, "deeper"),
]


@pytest.mark.parametrize(("name", "raw", "param", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_each_api_refuses_in_its_own_format(
    server: str, name: str, raw: bytes, param: str | None, words: str
) -> None:
    openai_style = post(f"{server}/v1/chat/completions", raw)
    assert openai_style.status_code == 400, openai_style.text
    error = openai_style.json()["error"]
    assert error["type"] == "invalid_request_error" and words in error["message"]
    assert error["param"] == param
    anthropic_style = post(f"{server}/v1/messages", raw)
    assert anthropic_style.status_code == 400
    body = anthropic_style.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert words in body["error"]["message"]
    for path in ("/v1/threads", "/execute", "/v1/embeddings", "/v1/completions"):
        problem = post(f"{server}{path}", raw)
        assert problem.status_code == 400, (path, problem.text)
    problem = post(f"{server}/v1/threads", raw)
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert words in problem.json()["detail"]


def test_official_sdks_get_a_bad_request_naming_the_field(server: str) -> None:
    with (
        openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0) as client,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a\x00"}])
    assert refused.value.param == "messages[0].content"
    with (
        anthropic.Anthropic(base_url=server, api_key=KEY, max_retries=0) as claude,
        pytest.raises(anthropic.BadRequestError, match="NUL"),
    ):
        claude.messages.create(
            model="m", max_tokens=4, messages=[{"role": "user", "content": "a\x00"}]
        )


def test_deep_metadata_is_refused_before_it_is_stored_and_reads_stay_whole(server: str) -> None:
    url = f"{server}/v1/memory/agents/a1/memories"
    deep = post(url, json.dumps({"text": "x", "metadata": nested(300)}).encode())
    assert deep.status_code == 400 and deep.json()["param"].startswith("metadata.k.k")
    fine = post(url, json.dumps({"text": "kept", "metadata": nested(50)}).encode())
    assert fine.status_code == 201, fine.text
    listed = httpx.get(url, headers=AUTH, timeout=30)
    assert listed.status_code == 200 and [m["text"] for m in listed.json()["data"]] == ["kept"]


def test_nul_and_surrogates_in_the_query_and_path_are_refused(server: str) -> None:
    for query in ("q=a%00b", "q=%ED%A0%80"):
        found = httpx.get(f"{server}/v1/memory/agents/a1/memories?{query}", headers=AUTH)
        assert found.status_code == 400, (query, found.text)
    nul_path = httpx.get(f"{server}/v1/threads/thr%00x", headers=AUTH)
    assert nul_path.status_code == 400 and "NUL" in nul_path.json()["detail"]


CREDENTIALS = [
    {},
    {"Authorization": "Bearer wrong-key"},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic dXNlcjpwdw=="},
    {"x-api-key": "roost-ffffffffffff-" + "x" * 40},
    {"Authorization": "Bearer " + "\u00e9" * 10},
]


def refused_handshake(server: str, path: str, headers: dict[str, str]) -> InvalidStatus:
    """The error of a refused WebSocket handshake. The socket is ours and closed here: the
    client leaves its own open when the handshake fails, and its later garbage collection
    would surface as a ResourceWarning inside whichever test runs then."""
    port = int(server.rsplit(":", 1)[1])
    ws_url = server.replace("http://", "ws://") + path
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        pytest.raises(InvalidStatus) as refused,
    ):
        connect(ws_url, sock=sock, additional_headers=headers, open_timeout=10).close()
    return refused.value


@pytest.mark.parametrize("headers", CREDENTIALS)
def test_websocket_without_a_valid_key_gets_401(server: str, headers: dict[str, str]) -> None:
    response = refused_handshake(server, "/v1/runs/run_x/ws", headers).response
    assert response.status_code == 401
    assert json.loads(response.body or b"{}")["status"] == 401


def test_a_valid_key_passes_to_the_route(server: str) -> None:
    # The route closes before accepting (no such run): uvicorn answers that with 403, not 401.
    refused = refused_handshake(server, "/v1/runs/run_nope/ws", AUTH)
    assert refused.response.status_code == 403
