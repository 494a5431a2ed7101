"""X-Roost-Session through the official SDKs: the session's cache is kept and reused."""

from __future__ import annotations

import anthropic
import httpx
import openai

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
