"""One agent out of a home and into a fresh one: its versions, threads, runs, checkpoints
and memories come along, nothing of its neighbours; a name clash is refused unless
--rename; a tampered file is refused naming the member, the home untouched."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from roost.cli.main import app as cli
from roost.llm.testing import FunctionModel
from tests.backup.helpers import APP_ENV
from tests.server.conftest import BOOTSTRAP_KEY, AppFactory

AUTH = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


def _cli(home: Path, *args: str) -> Any:
    env = {"ROOST_HOME": str(home), **APP_ENV}
    return CliRunner().invoke(cli, list(args), env=env)


def _rewrite(archive: Path, member: str, data: bytes) -> None:
    """The same archive with one member's bytes changed (the manifest left as it was)."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(archive, "w:gz") as tar:
        for info, content in members:
            content = data if info.name == member else content
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


async def _fill(make_app: AppFactory) -> dict[str, Any]:
    async with make_app(env=APP_ENV) as (app, client):
        app.state.llm.router.registry.register(FunctionModel(lambda info: "ok", "function:agent"))
        for instructions in ("Be brief.", "Be brief and kind."):  # two versions
            spec = {"name": "helper", "model": "function:agent", "instructions": instructions}
            r = await client.post("/v1/agents", json={"spec": spec}, headers=AUTH)
            assert r.status_code == 201, r.text
        other = {"name": "bystander", "model": "function:agent"}
        assert (
            await client.post("/v1/agents", json={"spec": other}, headers=AUTH)
        ).status_code == 201
        thread = (
            await client.post("/v1/threads", json={"metadata": {"user": "ada"}}, headers=AUTH)
        ).json()
        run = await client.post(
            f"/v1/threads/{thread['id']}/runs",
            json={"agent": "helper", "input": "hi"},
            headers=AUTH,
        )
        assert run.json()["status"] == "succeeded", run.text
        for text in ("Ada prefers tea", "Ada lives in Lyon"):
            r = await client.post(
                "/v1/memory/agents/helper/memories", json={"text": text}, headers=AUTH
            )
            assert r.status_code == 201, r.text
        await client.post(
            "/v1/memory/agents/bystander/memories", json={"text": "not mine"}, headers=AUTH
        )
        return {
            "thread": thread["id"], "run": run.json()["id"],
            "state": (await client.get(f"/v1/threads/{thread['id']}", headers=AUTH)).json(),
            "history": len((await client.get(f"/v1/threads/{thread['id']}/history", headers=AUTH)).json()["data"]),
        }  # fmt: skip


def test_an_agent_round_trips_into_a_fresh_home(
    make_app: AppFactory, roost_home: Path, tmp_path: Path, without_roost_env: None
) -> None:
    source = asyncio.run(_fill(make_app))
    assert source["history"] >= 1  # the run left checkpoints to carry
    file = tmp_path / "helper.tar.gz"
    made = _cli(roost_home, "backup", "export", "--agent", "helper", str(file), "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["agent"]["name"] == "helper"
    assert _cli(roost_home, "backup", "verify", str(file)).exit_code == 0

    fresh = tmp_path / "fresh-home"
    imported = _cli(fresh, "backup", "import", str(file), "--json")
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.output)
    assert (report["versions"], report["threads"], report["runs"], report["memories"]) == (
        2,
        1,
        1,
        2,
    )
    assert report["renamed_ids"] == []

    async def check(name: str, thread: str, run: str) -> None:
        async with make_app(env={**APP_ENV, "ROOST_HOME": str(fresh)}) as (_, client):
            versions = (await client.get(f"/v1/agents/{name}/versions", headers=AUTH)).json()[
                "data"
            ]
            assert [v["spec"]["instructions"] for v in sorted(versions, key=lambda v: v["version"])] == [
                "Be brief.", "Be brief and kind."]  # fmt: skip
            assert all(v["spec"]["name"] == name for v in versions)
            got = (await client.get(f"/v1/runs/{run}", headers=AUTH)).json()
            assert (got["status"], got["thread_id"], got["agent"]) == ("succeeded", thread, name)
            state = (await client.get(f"/v1/threads/{thread}", headers=AUTH)).json()
            assert state["values"] == source["state"]["values"]  # from the carried checkpoints
            history = (await client.get(f"/v1/threads/{thread}/history", headers=AUTH)).json()[
                "data"
            ]
            assert len(history) == source["history"]
            memories = (
                await client.get(f"/v1/memory/agents/{name}/memories", headers=AUTH)
            ).json()["data"]
            assert sorted(m["text"] for m in memories) == ["Ada lives in Lyon", "Ada prefers tea"]
            found = (
                await client.post(
                    f"/v1/memory/agents/{name}/search", json={"query": "tea"}, headers=AUTH
                )
            ).json()["data"]
            assert found[0]["text"] == "Ada prefers tea"  # vectors came along, searchable
            assert (await client.get("/v1/agents/bystander", headers=AUTH)).status_code == 404

    asyncio.run(check("helper", source["thread"], source["run"]))

    clash = _cli(fresh, "backup", "import", str(file))
    assert clash.exit_code == 1 and "already has an agent 'helper'" in clash.output
    again = _cli(fresh, "backup", "import", str(file), "--rename", "helper2", "--json")
    assert again.exit_code == 0, again.output
    renamed = json.loads(again.output)
    assert renamed["name"] == "helper2" and {"thread", "run"} <= set(renamed["renamed_ids"])

    async def second_copy() -> None:
        async with make_app(env={**APP_ENV, "ROOST_HOME": str(fresh)}) as (_, client):
            agent = (await client.get("/v1/agents/helper2", headers=AUTH)).json()
            assert agent["name"] == "helper2"
            memories = (
                await client.get("/v1/memory/agents/helper2/memories", headers=AUTH)
            ).json()["data"]
            assert len(memories) == 2
            original = (await client.get("/v1/memory/agents/helper/memories", headers=AUTH)).json()[
                "data"
            ]
            assert len(original) == 2  # the first import is untouched

    asyncio.run(second_copy())


def test_a_tampered_or_foreign_file_is_refused_and_the_home_untouched(
    make_app: AppFactory, roost_home: Path, tmp_path: Path, without_roost_env: None
) -> None:
    asyncio.run(_fill(make_app))
    file = tmp_path / "helper.tar.gz"
    assert _cli(roost_home, "backup", "export", "--agent", "helper", str(file)).exit_code == 0
    missing = _cli(roost_home, "backup", "export", "--agent", "nobody", str(tmp_path / "x.tar.gz"))
    assert missing.exit_code == 1 and "no agent 'nobody'" in missing.output

    fresh = tmp_path / "fresh-home"
    _rewrite(file, "agent/rows.jsonl", b'{"table": "agent_versions", "row": {}}\n')
    tampered = _cli(fresh, "backup", "import", str(file))
    assert tampered.exit_code == 1 and "agent/rows.jsonl" in tampered.output
    assert not (fresh / "roost.db").exists() or _agents(fresh) == []

    whole = _cli(roost_home, "backup", "create", "--json")
    archive = json.loads(whole.output)["path"]
    foreign = _cli(fresh, "backup", "import", archive)
    assert foreign.exit_code == 1 and "not an agent export" in foreign.output
    assert _agents(fresh) == []


def _agents(home: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(home / "roost.db") as conn:
        try:
            return [r[0] for r in conn.execute("SELECT DISTINCT name FROM agent_versions")]
        except sqlite3.OperationalError:  # no tables yet: nothing was written
            return []
