"""Model swaps on a real uvicorn server that loaded the bundled model itself, with a tiny
random-weight Llama directory as the second model."""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from roost.cli.main import app
from roost.config import load_settings
from roost.engine.loader import converted_dir, resolve_model_path
from roost.engine.registry import ModelRegistry
from roost.server.app import create_app
from tests.support.tiny_model import write_tiny_llama
from tests.support.uvicorn_thread import ThreadedServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
API_KEY = "swap-test-key-0123456789abcdef"
BUILTIN = "smollm2-135m-instruct"
STREAM_TOKENS = 200  # long enough to outlast loading the tiny model, so the swap must drain


@pytest.fixture(scope="module")
def server(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    home = tmp_path_factory.mktemp("swap-home")
    # Reuse the session's conversion of the bundled GGUF instead of converting it again.
    ModelRegistry(model_home).pull(BUILTIN)
    gguf = resolve_model_path(BUILTIN)
    (home / "models").mkdir()
    converted_dir(gguf, home).symlink_to(converted_dir(gguf, model_home))
    broken = write_tiny_llama(home / "broken")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    settings = load_settings(
        env={
            "ROOST_HOME": str(home),
            "ROOST_API_KEY": API_KEY,
            "ROOST_ENGINE__KV_CACHE_GB": "0.1",
            "ROOST_ENGINE__MAX_NUM_SEQS": "4",
            "ROOST_ENGINE__SESSION_CACHE__DIRECTORY": str(home / "kv"),
            "ROOST_ENGINE__MODELS__TINY": str(write_tiny_llama(home / "tiny")),
            "ROOST_ENGINE__MODELS__BROKEN": str(broken),
            "ROOST_ENGINE__MODELS__GONE": str(home / "does-not-exist"),
        }
    )
    running = ThreadedServer(create_app(settings)).start()
    yield running
    running.stop()


@pytest.fixture
def admin(server: ThreadedServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
        yield client


@pytest.fixture
def oai(server: ThreadedServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest.fixture(autouse=True)
def serving_the_builtin_after(admin: httpx.Client) -> Iterator[None]:
    """Each test starts and ends on the bundled model, even when one fails halfway."""
    yield
    if served(admin) != [BUILTIN]:
        admin.post("/admin/models/swap", json={"model": BUILTIN, "drain_timeout_s": 0})


def served(admin: httpx.Client) -> list[str]:
    return [model["id"] for model in admin.get("/v1/models").json()["data"]]


def ask(oai: openai.OpenAI, model: str) -> Any:
    return oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "t5 t6 t7"}], max_tokens=4
    )


def swap_events(
    admin: httpx.Client, body: dict[str, Any], into: queue.Queue[tuple[str, Any]]
) -> None:
    """POST a streamed swap and put each (event, data) on ``into`` as it arrives."""
    with admin.stream("POST", "/admin/models/swap", json={**body, "stream": True}) as r:
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                into.put((event, json.loads(line.removeprefix("data: "))))


def test_swap_drains_a_running_stream_and_holds_new_requests(
    admin: httpx.Client, oai: openai.OpenAI
) -> None:
    ask(oai, BUILTIN)  # waits for the start-up load
    stream = oai.chat.completions.create(
        model=BUILTIN,
        messages=[{"role": "user", "content": "Count from 1 to 1000."}],
        max_tokens=STREAM_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = iter(stream)
    first = next(chunks)  # the stream is running now
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    body = {"model": "tiny", "drain_timeout_s": 600}
    swapper = threading.Thread(target=swap_events, args=(admin, body, events))
    swapper.start()
    seen = [events.get(timeout=120)]
    while seen[-1] != ("phase", seen[-1][1]) or seen[-1][1]["phase"] != "draining":
        assert seen[-1][0] == "phase", seen
        seen.append(events.get(timeout=120))
    assert seen[-1][1]["in_flight"] == 1

    # While the old model drains: not ready, one swap at a time, new requests wait.
    ready = admin.get("/health/ready")
    assert ready.status_code == 503
    assert "swapping to 'tiny'" in ready.json()["detail"]
    second = admin.post("/admin/models/swap", json={"model": BUILTIN})
    assert second.status_code == 409
    assert "a swap to 'tiny' is in progress" in second.json()["detail"]
    assert admin.get("/admin/models").json()["swap"]["phase"] == "draining"
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(ask, oai, "tiny")
        rest = list(chunks)
        reply = waiting.result(timeout=300)
    swapper.join(timeout=300)

    # The running stream finished intact on the old model.
    text = first.choices[0].delta.content or ""
    text += "".join(c.choices[0].delta.content or "" for c in rest if c.choices)
    finishes = [
        c.choices[0].finish_reason for c in rest if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["length"]
    assert rest[-1].usage is not None and rest[-1].usage.completion_tokens == STREAM_TOKENS
    assert {c.model for c in [first, *rest]} == {BUILTIN}
    assert text
    # The held request was served by the new model.
    assert reply.model == "tiny" and reply.usage is not None
    while not events.empty():
        seen.append(events.get())
    assert [data["phase"] for event, data in seen if event == "phase"] == [
        "loading",
        "draining",
        "unloading",
        "ready",
    ]
    phases = {data["phase"]: data for event, data in seen if event == "phase"}
    assert phases["unloading"]["cancelled"] == 0
    assert phases["ready"]["held"] >= 1
    (done_event, done) = seen[-1]
    assert done_event == "done"
    assert (done["model"], done["previous"], done["status"]) == ("tiny", BUILTIN, "swapped")

    assert served(admin) == ["tiny"]
    assert admin.get("/health/ready").status_code == 200
    listing = admin.get("/admin/models").json()
    assert listing["loaded"] == "tiny" and listing["swap"] is None
    assert [r["name"] for r in listing["data"] if r["is_loaded"]] == ["tiny"]
    metrics = admin.get("/metrics").text
    assert 'roost_engine_model_loaded{digest="' in metrics
    loaded = [line for line in metrics.splitlines() if line.startswith("roost_engine_model_loaded")]
    assert len(loaded) == 1 and 'model="tiny"' in loaded[0] and loaded[0].endswith(" 1.0")
    assert 'roost_engine_model_swap_seconds_count{outcome="ok"}' in metrics
    with pytest.raises(openai.NotFoundError, match="smollm2-135m-instruct"):
        ask(oai, BUILTIN)

    back = admin.post("/admin/models/swap", json={"model": BUILTIN})
    assert back.status_code == 200, back.text
    assert [p["phase"] for p in back.json()["phases"]] == [
        "loading",
        "draining",
        "unloading",
        "ready",
    ]
    assert served(admin) == [BUILTIN]
    assert ask(oai, BUILTIN).model == BUILTIN


def test_swap_to_the_loaded_model_changes_nothing(admin: httpx.Client, oai: openai.OpenAI) -> None:
    ask(oai, BUILTIN)
    response = admin.post("/admin/models/swap", json={"model": BUILTIN})
    assert response.status_code == 200
    assert response.json() == {
        "status": "unchanged",
        "model": BUILTIN,
        "previous": BUILTIN,
        "phases": [],
    }


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("broken", 400, "cannot swap to 'broken': "),
        ("gone", 400, "cannot swap to 'gone': missing: "),
        ("nobody", 404, "no model named 'nobody'; known models: "),
    ],
)
def test_a_failed_swap_leaves_the_old_model_serving(
    admin: httpx.Client, oai: openai.OpenAI, name: str, status: int, reason: str
) -> None:
    ask(oai, BUILTIN)
    response = admin.post("/admin/models/swap", json={"model": name})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail.startswith(reason)
    if name == "broken":
        assert detail.endswith(f"still serving '{BUILTIN}'")
    assert served(admin) == [BUILTIN]
    assert ask(oai, BUILTIN).model == BUILTIN
    assert admin.get("/health/ready").status_code == 200


def test_requests_still_running_at_the_drain_timeout_are_cancelled(
    admin: httpx.Client, oai: openai.OpenAI
) -> None:
    ask(oai, BUILTIN)
    stream = oai.chat.completions.create(
        model=BUILTIN,
        messages=[{"role": "user", "content": "Count from 1 to 1000."}],
        max_tokens=2000,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = iter(stream)
    next(chunks)
    swapped = admin.post("/admin/models/swap", json={"model": "tiny", "drain_timeout_s": 0.2})
    assert swapped.status_code == 200, swapped.text
    unloading = next(p for p in swapped.json()["phases"] if p["phase"] == "unloading")
    assert unloading["cancelled"] == 1
    rest = list(chunks)  # the stream ends (cut short) instead of hanging
    assert rest[-1].usage is not None and rest[-1].usage.completion_tokens < 2000
    assert served(admin) == ["tiny"]
    assert admin.post("/admin/models/swap", json={"model": BUILTIN}).status_code == 200


def test_cli_swap_reports_phases_and_errors(
    server: ThreadedServer, admin: httpx.Client, without_roost_env: None
) -> None:
    cli = CliRunner()
    options = ["--url", server.url, "--api-key", API_KEY]
    swapped = cli.invoke(app, ["models", "swap", "tiny", *options])
    assert swapped.exit_code == 0, swapped.output
    # The server runs in this process, so its log lines are in the output too.
    phases = re.findall(r"^ +[0-9.]+s  (\w+)", swapped.output, flags=re.MULTILINE)
    assert phases == ["loading", "draining", "unloading", "ready"]
    assert f"now serving tiny (was {BUILTIN}) after " in swapped.output
    assert served(admin) == ["tiny"]
    again = cli.invoke(app, ["models", "swap", "tiny", *options])
    assert again.exit_code == 0
    assert "tiny is already loaded; nothing to do" in again.output
    failed = cli.invoke(app, ["models", "swap", "gone", *options])
    assert failed.exit_code == 1
    assert "cannot swap to 'gone': missing" in failed.output
    back = cli.invoke(app, ["models", "swap", BUILTIN, "--drain-timeout", "5", *options])
    assert back.exit_code == 0, back.output
    assert served(admin) == [BUILTIN]


def session_rows(admin: httpx.Client, session: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = admin.get("/admin/caches").json()["data"]
    return [row for row in rows if row["session_id"] == session]


def test_session_caches_stay_on_disk_for_when_their_model_returns(
    admin: httpx.Client, oai: openai.OpenAI
) -> None:
    messages = [{"role": "user", "content": "Describe the harbour at dawn, in detail. " * 8}]
    headers = {"X-Roost-Session": "swap-session-1"}

    def turn() -> Any:
        return oai.chat.completions.create(
            model=BUILTIN, messages=messages, max_tokens=4, temperature=0, extra_headers=headers
        )  # type: ignore[call-overload]

    first = turn()
    assert [row["tier"] for row in session_rows(admin, "swap-session-1")] == ["hot"]
    assert admin.post("/admin/models/swap", json={"model": "tiny"}).status_code == 200
    # Another model's engine has its own caches: the session is not offered to it.
    assert session_rows(admin, "swap-session-1") == []
    assert admin.post("/admin/models/swap", json={"model": BUILTIN}).status_code == 200
    (row,) = session_rows(admin, "swap-session-1")
    assert row["tier"] == "cold"  # written to disk when the old engine unloaded
    again = turn()
    details = again.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens is not None
    assert details.cached_tokens == (first.usage.prompt_tokens - 1) // 16 * 16
