"""``roost cache`` against a running server: stats, offload, warm and clear of a session."""

from __future__ import annotations

import json

import openai
from typer.testing import CliRunner

from roost.cli.main import app
from tests.api.conftest import API_KEY
from tests.support.uvicorn_thread import ThreadedServer

SESSION = "cli-cache-session"


def test_cache_commands_manage_a_session_of_the_server(
    oai: openai.OpenAI,
    server: ThreadedServer,
    model_name: str,
    without_roost_env: None,
) -> None:
    cli = CliRunner()
    options = ["--url", server.url, "--api-key", API_KEY]
    oai.chat.completions.create(
        model=model_name,
        messages=[{"role": "user", "content": "Tell me about the tides and the moon. " * 6}],
        max_tokens=4,
        extra_headers={"X-Roost-Session": SESSION},
    )

    def row() -> dict[str, object] | None:
        listed = cli.invoke(app, ["cache", "sessions", "--json", *options])
        assert listed.exit_code == 0, listed.output
        # The server runs in this process: its log lines are in the output too.
        start = listed.output.index('{\n  "object"')
        listing, _ = json.JSONDecoder().raw_decode(listed.output, start)
        rows = [r for r in listing["data"] if r["session_id"] == SESSION]
        return rows[0] if rows else None

    first = row()
    assert first is not None and first["tier"] == "hot"

    def kinds() -> dict[str, dict[str, object]]:
        shown = cli.invoke(app, ["cache", "stats", "--json", *options])
        assert shown.exit_code == 0, shown.output
        start = shown.output.index('{\n  "object": "list",\n  "source"')
        listing, _ = json.JSONDecoder().raw_decode(shown.output, start)
        return {r["kind"]: r for r in listing["data"]}

    by_kind = kinds()
    assert set(by_kind) == {"kv", "prompt", "response", "embeddings", "vectors"}
    # The engine is shared by the test session: earlier tests' sessions may be cached too.
    sessions_before = int(by_kind["kv"]["entries"])  # type: ignore[call-overload]
    assert sessions_before >= 1 and by_kind["prompt"]["entries"] >= 1
    assert by_kind["kv"]["policy"].startswith("LRU per tier")
    dropped = cli.invoke(app, ["cache", "clear", "--kind", "prompt", *options])
    assert dropped.exit_code == 0 and "prompt: cleared" in dropped.output, dropped.output
    # The sessions' pinned blocks are not the shared cache's to drop.
    assert kinds()["kv"]["entries"] == sessions_before
    short_id = str(first["id"])[:12]
    table = cli.invoke(app, ["cache", "sessions", *options])
    assert short_id in table.output and "hot:" in table.output

    offloaded = cli.invoke(app, ["cache", "offload", *options])
    assert offloaded.exit_code == 0, offloaded.output
    assert (row() or {})["tier"] == "cold"

    warmed = cli.invoke(app, ["cache", "warm", short_id, *options])
    assert warmed.exit_code == 0, warmed.output
    assert f"{short_id}" in warmed.output and "is warm" in warmed.output

    unknown = cli.invoke(app, ["cache", "warm", "no-such-id", *options])
    assert unknown.exit_code != 0
    assert "matches 0 caches" in unknown.output

    cleared = cli.invoke(app, ["cache", "clear", short_id, *options])
    assert cleared.exit_code == 0, cleared.output
    assert "cleared 1 session cache(s)" in cleared.output
    assert row() is None
