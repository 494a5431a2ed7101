"""A chat answered by the bundled model on the local engine, end to end: the official
``openai`` SDK against a real server, each turn one trace in the trace store whose
``chat <model>`` span carries the GenAI attributes — on the second turn of a session the
tokens read from the KV cache too."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import openai

from tests.api.conftest import API_KEY
from tests.support.uvicorn_thread import ThreadedServer

SESSION_HEADER = "X-Roost-Session"


def turn(oai: openai.OpenAI, model: str, messages: list[Any], session: str) -> tuple[str, Any]:
    """One turn under a caller's trace of its own: (its trace id, the reply)."""
    trace_id = secrets.token_hex(16)
    reply = oai.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=12,
        temperature=0,
        extra_headers={
            SESSION_HEADER: session,
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        },
    )
    return trace_id, reply


def stored_trace(server: ThreadedServer, trace_id: str) -> dict[str, Any]:
    """The trace as the API serves it (the query flushes the writer's queue first)."""
    reply = httpx.get(
        f"{server.url}/v1/traces/{trace_id}", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert reply.status_code == 200, reply.text
    trace: dict[str, Any] = reply.json()
    return trace


def chat_span(trace: dict[str, Any]) -> dict[str, Any]:
    """The trace is the request span with the model call as its only child."""
    (root,) = trace["spans"]
    assert root["name"] == "POST /v1/chat/completions"
    (chat,) = root["children"]
    return chat


def test_each_turn_is_one_trace_with_genai_attributes_and_cache_reads(
    server: ThreadedServer, oai: openai.OpenAI, model_name: str
) -> None:
    session = f"trace-e2e-{secrets.token_hex(4)}"
    messages: list[Any] = [
        {"role": "system", "content": "You are a terse assistant. Answer in a few words."},
        {"role": "user", "content": "Name a colour of the sky."},
    ]
    first_trace, first = turn(oai, model_name, messages, session)
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": "And the colour of grass?"},
    ]
    second_trace, second = turn(oai, model_name, messages, session)

    spans = []
    for trace_id, reply in ((first_trace, first), (second_trace, second)):
        trace = stored_trace(server, trace_id)
        assert trace["span_count"] == 2 and trace["error_count"] == 0
        assert trace["models"] == [model_name]
        span = chat_span(trace)
        attributes = span["attributes"]
        assert span["name"] == f"chat {model_name}" and span["status"] != "error"
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "roost"
        assert attributes["gen_ai.request.model"] == model_name
        assert attributes["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
        assert attributes["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
        assert attributes["roost.session_id"] == session
        assert "gen_ai.input.messages" not in attributes  # content is off by default
        spans.append(span)

    # The second turn's prompt starts with the whole first exchange: the session's KV
    # cache served it, and the span says how much, as the usage the client got does.
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached is not None and cached >= first.usage.prompt_tokens - 16
    assert spans[1]["attributes"]["gen_ai.usage.cache_read.input_tokens"] == cached
    assert spans[0]["attributes"].get("gen_ai.usage.cache_read.input_tokens", 0) == 0
