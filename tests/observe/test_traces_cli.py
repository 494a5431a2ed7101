"""``roost traces list|show`` on the store a server wrote: an agent run as a terminal tree."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app
from tests.agents.test_api import agent_app, answer_with_tools, new_thread
from tests.server.conftest import AppFactory


@pytest.fixture
def cli_env(roost_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.chdir(roost_home)


async def roost(*args: str) -> tuple[int, str]:
    # The CLI runs its own event loop: give it a thread of its own.
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    return result.exit_code, result.output


async def test_list_and_show_an_agent_runs_trace(
    make_app: AppFactory, auth: dict[str, str], cli_env: None
) -> None:
    async with agent_app(make_app, auth, answer_with_tools) as (app_, client, _log):
        thread = await new_thread(client)
        run = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "2+40?", "mode": "wait"}
        )
        run_id = run.json()["id"]
        await app_.state.kernel.traces.flush()

        code, listed = await roost("traces", "list", "--run", run_id, "--json")
        assert code == 0, listed
        (summary,) = json.loads(listed)["data"]
        assert summary["run_id"] == run_id and summary["agent"] == "calc"

        code, shown = await roost("traces", "show", summary["trace_id"])
        assert code == 0, shown
        lines = shown.splitlines()
        root = next(i for i, line in enumerate(lines) if "invoke_agent calc" in line)
        tool = next(i for i, line in enumerate(lines) if "execute_tool add" in line)
        assert lines[0].startswith(f"POST /v1/threads/{thread}/runs") and root < tool
        # deeper in the tree: more indentation than the run's span
        assert lines[tool].index("execute_tool") > lines[root].index("invoke_agent")
        assert any("chat agent" in line and "tokens" in line for line in lines)

        code, table = await roost("traces", "list")
        assert code == 0 and summary["trace_id"] in table

        code, missing = await roost("traces", "show", "0" * 32)
        assert code == 1 and "no trace" in missing
        code, other = await roost("traces", "list", "--tenant", "nobody")
        assert code != 0 and "no tenant" in other
