"""X-Roost-Session through the official SDKs: the session's cache is kept and reused."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.api.conftest import API_KEY
from tests.support.uvicorn_thread import ThreadedServer

STORY = "Write down what the lighthouse keeper saw from the gallery this evening. " * 6


def session_row(server: ThreadedServer, session: str) -> dict[str, object]:
    listing = httpx.get(
        f"{server.url}/admin/caches", headers={"Authorization": f"Bearer {API_KEY}"}
    ).json()
    (row,) = [r for r in listing["data"] if r["session_id"] == session]
    return row  # type: ignore[no-any-return]


def test_openai_session_is_cached_and_reused_on_the_next_turn(
    oai: openai.OpenAI, server: ThreadedServer, model_name: str
) -> None:
    headers = {"X-Roost-Session": "api-openai-1"}
    messages: list[dict[str, str]] = [{"role": "user", "content": STORY}]
    first = oai.chat.completions.create(
        model=model_name, messages=messages, max_tokens=8, temperature=0, extra_headers=headers
    )  # type: ignore[call-overload]
    assert first.usage is not None
    row = session_row(server, "api-openai-1")
    assert row["tier"] == "hot"
    computed = first.usage.prompt_tokens + first.usage.completion_tokens - 1
    assert row["num_tokens"] == computed // 16 * 16
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": "And then?"},
    ]
    second = oai.chat.completions.create(
        model=model_name, messages=messages, max_tokens=8, temperature=0, extra_headers=headers
    )  # type: ignore[call-overload]
    assert second.usage is not None
    details = second.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens is not None
    assert details.cached_tokens >= first.usage.prompt_tokens // 16 * 16


def test_anthropic_session_is_cached(
    claude: anthropic.Anthropic, server: ThreadedServer, model_name: str
) -> None:
    reply = claude.messages.create(
        model=model_name,
        max_tokens=8,
        messages=[{"role": "user", "content": STORY}],
        extra_headers={"X-Roost-Session": "api-anthropic-1"},
    )
    row = session_row(server, "api-anthropic-1")
    assert row["tier"] == "hot"
    assert int(str(row["num_tokens"])) >= reply.usage.input_tokens // 16 * 16


def test_without_a_header_the_end_user_names_the_session(
    oai: openai.OpenAI, claude: anthropic.Anthropic, server: ThreadedServer, model_name: str
) -> None:
    messages = [{"role": "user", "content": STORY}]
    oai.chat.completions.create(
        model=model_name, messages=messages, max_tokens=2, user="end-user-openai"
    )  # type: ignore[call-overload]
    assert session_row(server, "end-user-openai")["tier"] == "hot"
    claude.messages.create(
        model=model_name,
        max_tokens=2,
        messages=[{"role": "user", "content": STORY}],
        metadata={"user_id": "end-user-anthropic"},
    )
    assert session_row(server, "end-user-anthropic")["tier"] == "hot"
    # The header wins when both are given.
    oai.chat.completions.create(
        model=model_name,
        messages=messages,
        max_tokens=2,
        user="end-user-ignored",
        extra_headers={"X-Roost-Session": "header-wins"},
    )  # type: ignore[call-overload]
    assert session_row(server, "header-wins")["tier"] == "hot"
    listing = httpx.get(
        f"{server.url}/admin/caches", headers={"Authorization": f"Bearer {API_KEY}"}
    ).json()
    assert "end-user-ignored" not in {row["session_id"] for row in listing["data"]}


def test_an_overlong_end_user_id_is_refused_in_each_dialect(
    oai: openai.OpenAI, claude: anthropic.Anthropic, model_name: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model=model_name, messages=[{"role": "user", "content": "hi"}], user="u" * 257
        )  # type: ignore[call-overload]
    assert refused.value.body["param"] == "user"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as rejected:
        claude.messages.create(
            model=model_name,
            max_tokens=2,
            messages=[{"role": "user", "content": "hi"}],
            metadata={"user_id": "u" * 257},
        )
    assert rejected.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
