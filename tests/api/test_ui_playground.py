"""The web UI's chat playground and KV caches page against the bundled model: the second
turn of a conversation shows prompt tokens served from the KV cache, and the session's
cache is listed by tier for the operator."""

from __future__ import annotations

import html
import re

import httpx

from tests.api.conftest import API_KEY
from tests.support.uvicorn_thread import ThreadedServer


def _field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field"
    return html.unescape(found.group(1))


def _sign_in(client: httpx.Client) -> None:
    form = client.get("/ui/login").text
    done = client.post("/ui/login", data={"csrf": _field(form, "csrf"), "api_key": API_KEY})
    assert done.status_code == 303, done.text


def _cached_per_turn(page: str) -> list[tuple[int, int]]:
    return [(int(p), int(c)) for p, c in re.findall(r"prompt (\d+) tokens, (\d+) cached", page)]


def test_playground_shows_cached_tokens_per_turn(server: ThreadedServer, model_name: str) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        _sign_in(client)
        page = client.get("/ui/playground").text
        assert f'<option value="{model_name}" selected>' in page
        for message in ("Name three colours.", "Now name one more."):
            answer = client.post(
                "/ui/playground",
                data={
                    "csrf": _field(page, "csrf"),
                    "session": _field(page, "session"),
                    "history": _field(page, "history"),
                    "model": model_name,
                    "message": message,
                    # Greedy and capped: a sampled reply without a cap can run for minutes.
                    "max_tokens": "48",
                    "temperature": "0",
                },
            )
            assert answer.status_code == 200, answer.text
            page = answer.text
            assert 'role="alert"' not in page, page
        turns = _cached_per_turn(page)
        assert len(turns) == 2, turns
        (first_prompt, _), (second_prompt, second_cached) = turns
        # The second prompt repeats the first turn: most of it comes from the session's cache.
        assert second_prompt > first_prompt
        assert second_cached >= first_prompt // 2, turns
        session = _field(page, "session")
        caches = client.get("/ui/caches")
        assert caches.status_code == 200
        assert session in caches.text


def test_playground_refuses_bad_sampling_settings_and_keeps_the_conversation(
    server: ThreadedServer, model_name: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        _sign_in(client)
        page = client.get("/ui/playground").text
        # The form offers bounded defaults.
        assert 'name="max_tokens" type="number" min="1" max="4096" step="1" value="256"' in page
        history = '[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]'
        for name, value, complaint in (
            ("max_tokens", "0", "Max tokens must be"),
            ("max_tokens", "100000", "Max tokens must be"),
            ("max_tokens", "many", "Max tokens must be"),
            ("temperature", "2.5", "Temperature must be"),
            ("temperature", "warm", "Temperature must be"),
        ):
            answer = client.post(
                "/ui/playground",
                data={
                    "csrf": _field(page, "csrf"),
                    "session": _field(page, "session"),
                    "history": history,
                    "model": model_name,
                    "message": "and now?",
                    name: value,
                },
            )
            assert answer.status_code == 200, answer.text
            assert 'role="alert"' in answer.text and complaint in answer.text, (name, value)
            # Nothing was sent to the model and the conversation so far is still on the page.
            assert _cached_per_turn(answer.text) == [(0, 0)]
            assert html.escape(value) in answer.text
