"""``roost migrate-store``: a SQLite home moves to PostgreSQL with equal counts and works
there; it moves back; vectors travel to pgvector and back; refusals leave data alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roost.cli.main import app as cli
from roost.config import Settings, load_settings
from roost.errors import Conflict
from roost.memory.service import MemoryServices
from roost.platform import Platform
from roost.platform.store_move import move_store
from roost.storage import Database
from tests.backup.helpers import APP_ENV, Filled, check_restored, counter_graph, fill
from tests.server.conftest import AppFactory


def migrate(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> dict:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["migrate-store", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_sqlite_home_moves_to_postgres_and_back_with_equal_counts(
    make_app: AppFactory,
    roost_home: Path,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    without_roost_env: None,
) -> None:
    async def serve_and_fill() -> Filled:
        async with make_app(env=APP_ENV) as (app, client):
            return await fill(app, client, roost_home)

    filled = asyncio.run(serve_and_fill())
    env = {"ROOST_HOME": str(roost_home), **APP_ENV}
    moved = migrate(monkeypatch, env, "--to", postgres_url)
    counts = moved["counts"]
    for table in ("tenants", "api_keys", "agent_versions", "agent_threads", "agent_runs",
                  "memory_turns", "kb_sources", "graph_checkpoints", "embedding_cache"):  # fmt: skip
        assert counts[table]["source"] == counts[table]["target"] > 0, table
    assert all(c["source"] == c["target"] for c in counts.values())
    assert any("vectors stay in" in note for note in moved["notes"])  # no pgvector here

    async def serve_on_postgres() -> None:
        async with make_app(env={**APP_ENV, "ROOST_DATABASE_URL": postgres_url}) as (app, client):
            assert app.state.platform.database.dialect == "postgresql"
            await check_restored(app, client, roost_home, filled)

    asyncio.run(serve_on_postgres())

    back_home = tmp_path / "back"
    env = {"ROOST_HOME": str(back_home), "ROOST_DATABASE_URL": postgres_url, **APP_ENV}
    back = migrate(monkeypatch, env, "--to", f"sqlite:///{back_home / 'roost.db'}")
    assert back["counts"]["tenants"] == counts["tenants"]
    assert back["counts"]["graph_checkpoints"] == counts["graph_checkpoints"]
    assert (back_home / "agent-threads.db").exists()


def test_a_non_empty_target_is_refused(
    settings: Settings, postgres_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        platform = await Platform.open(settings)
        await platform.tenants.create("acme")
        await platform.close()
        report = await move_store(settings, postgres_url)
        assert report.counts["tenants"] == (2, 2)  # default and acme
        other = load_settings(env={"ROOST_HOME": str(tmp_path / "other")})
        with pytest.raises(Conflict, match="already holds"):
            await move_store(other, postgres_url)
        with pytest.raises(Conflict, match="nothing to move"):
            await move_store(other, f"sqlite:///{tmp_path / 'x.db'}")

    asyncio.run(scenario())


def test_queued_runs_are_refused(
    make_app: AppFactory, auth: dict[str, str], postgres_url: str
) -> None:
    async def enqueue() -> Settings:
        # workers = 0: this server only enqueues, so the run stays queued.
        async with make_app(env={"ROOST_RUNS__WORKERS": "0"}) as (app, client):
            client.headers.update(auth)
            settings = app.state.platform.settings
            tenant = app.state.default_tenant_id
            app.state.agents.graphs["counter"] = counter_graph(settings, tenant)
            thread = (await client.post("/v1/threads", json={})).json()["id"]
            run = await client.post(
                f"/v1/threads/{thread}/runs",
                json={"graph": "counter", "input": {"count": 1}, "mode": "background"},
            )
            assert run.json()["status"] == "queued", run.text
            app.state.agents.graphs.pop("counter").checkpointer.close()
            return settings

    async def scenario() -> None:
        settings = await enqueue()
        with pytest.raises(Conflict, match="1 run\\(s\\) are queued or running"):
            await move_store(settings, postgres_url)

    asyncio.run(scenario())


@pytest.mark.postgres
async def test_vectors_move_to_pgvector_and_back(
    roost_home: Path, pgvector_url: str, tmp_path: Path
) -> None:
    env = {"ROOST_HOME": str(roost_home), **APP_ENV}
    sqlite_home = load_settings(env=env)

    async def remember(settings: Settings, texts: list[str]) -> None:
        database = await Database.connect(settings.database_url)
        memory = await MemoryServices.open(settings, database)
        try:
            for text in texts:
                await memory.remember("t", "agent", text)
        finally:
            await memory.close()
            await database.close()

    async def recall(settings: Settings, query: str) -> list[str]:
        database = await Database.connect(settings.database_url)
        memory = await MemoryServices.open(settings, database)
        try:
            return [r.memory.text for r in await memory.recall("t", "agent", query, k=1)]
        finally:
            await memory.close()
            await database.close()

    await remember(sqlite_home, ["Ada prefers green tea", "Ada lives in Lyon"])
    before = await recall(sqlite_home, "where does Ada live")
    report = await move_store(sqlite_home, pgvector_url)
    assert report.counts["vectors"] == (2, 2)
    on_postgres = load_settings(env={**env, "ROOST_DATABASE_URL": pgvector_url})
    assert await recall(on_postgres, "where does Ada live") == before == ["Ada lives in Lyon"]

    back = load_settings(
        env={**APP_ENV, "ROOST_HOME": str(tmp_path / "b"), "ROOST_DATABASE_URL": pgvector_url}
    )
    report = await move_store(back, f"sqlite:///{tmp_path / 'b' / 'roost.db'}")
    assert report.counts["vectors"] == (2, 2)
    again = load_settings(env={**APP_ENV, "ROOST_HOME": str(tmp_path / "b")})
    assert await recall(again, "where does Ada live") == ["Ada lives in Lyon"]
