"""Every listing and show command takes --json and prints one JSON document on stdout,
run against a fresh home with no server (this machine's store, through the kernel)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from roost.cli.main import app

# A command that lists or shows things, by its last word (and these whole commands).
LISTING_WORDS = {"list", "show", "stats", "search"}
LISTING_COMMANDS = {("usage",), ("doctor",)}
# Listing commands that need a running server: their --json is exercised with one in
# tests/api/test_cache_cli.py; here only that they take it.
NEEDS_SERVER = {("cache", "stats")}


def leaf_commands(command: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every runnable command by its words (typer vendors its own click: duck-typed)."""
    if hasattr(command, "commands"):
        found: dict[tuple[str, ...], Any] = {}
        for name, child in command.commands.items():
            found.update(leaf_commands(child, (*path, name)))
        return found
    return {path: command}


COMMANDS = leaf_commands(typer.main.get_command(app))
LISTINGS = sorted(p for p in COMMANDS if p[-1] in LISTING_WORDS or p in LISTING_COMMANDS)


@pytest.fixture
def roost(roost_home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("ROOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(roost_home))
    monkeypatch.setenv("ROOST_MEMORY__EMBEDDER", "hashing")  # no model download for memory
    monkeypatch.chdir(roost_home)
    return CliRunner()


def test_the_walk_finds_every_group() -> None:
    groups = {path[0] for path in COMMANDS}
    assert {"agents", "approvals", "kb", "keys", "memory", "models", "tenants", "tools",
            "cache", "config", "usage", "doctor", "worker", "serve"} <= groups  # fmt: skip
    assert len(LISTINGS) >= 17


@pytest.mark.parametrize("path", LISTINGS, ids=" ".join)
def test_listing_and_show_commands_take_json(path: tuple[str, ...]) -> None:
    options = {opt for param in COMMANDS[path].params for opt in getattr(param, "opts", [])}
    assert "--json" in options, f"roost {' '.join(path)} has no --json"


async def seed_trace() -> str:
    """One stored trace of the default tenant (a fresh home has none to show)."""
    from roost.config import load_settings
    from roost.observe.span_record import SpanRecord
    from roost.observe.trace_schema import TRACE_MIGRATIONS
    from roost.observe.trace_store import TraceStore
    from roost.security.tenants import TenantStore
    from roost.storage import Database, migrate

    database = await Database.connect(load_settings().database_url)
    try:
        tenant = await TenantStore(database).find_by_name("default")
        assert tenant is not None
        await migrate(database, TRACE_MIGRATIONS)
        trace_id = "ab" * 16
        await TraceStore(database).write([
            SpanRecord(
                tenant_id=tenant.id, trace_id=trace_id, span_id="cd" * 8, parent_span_id=None,
                name="POST /v1/threads", kind="server", start_us=1_000_000, duration_us=500,
                status="ok", status_message=None, attributes={},
            )
        ])  # fmt: skip
        return trace_id
    finally:
        await database.close()


async def seed_evaluation() -> str:
    """One finished evaluation of the default tenant (``evals run`` needs a server)."""
    from roost.config import load_settings
    from roost.evals.schema import EVAL_MIGRATIONS
    from roost.security.tenants import TenantStore
    from roost.storage import Database, migrate

    database = await Database.connect(load_settings().database_url)
    try:
        tenant = await TenantStore(database).find_by_name("default")
        assert tenant is not None
        await migrate(database, EVAL_MIGRATIONS)
        await database.execute(
            "INSERT INTO eval_runs (id, tenant_id, dataset, dataset_version, target, scorer,"
            " status, item_count, summary, created_at, updated_at) VALUES ('eval_1', :t,"
            " 'qa', 1, '{\"agent\": \"reader\"}', '{\"type\": \"exact\"}', 'succeeded',"
            " 0, NULL, 1, 1)",
            {"t": tenant.id},
        )
        return "eval_1"
    finally:
        await database.close()


def test_every_listing_prints_valid_json_on_a_fresh_home(
    roost: CliRunner, roost_home: Path
) -> None:
    spec = roost_home / "reader.yaml"
    spec.write_text("name: reader\nmodel: local:smollm2-135m-instruct\ntools: [read_file]\n")
    assert roost.invoke(app, ["agents", "create", str(spec)]).exit_code == 0
    pending = roost.invoke(app, ["tools", "run", "delete_file", "-a", '{"path": "x.txt"}'])
    approval_id = json.loads(pending.stdout)["approval_id"]
    notes = roost_home / "notes"
    notes.mkdir()
    (notes / "roost.md").write_text("A roost is where birds rest at night.\n")
    assert roost.invoke(app, ["kb", "add", str(notes)]).exit_code == 0

    trace_id = asyncio.run(seed_trace())
    eval_id = asyncio.run(seed_evaluation())
    items = roost_home / "items.jsonl"
    items.write_text('{"input": "q", "expected": "a"}\n')
    for command in (
        ["prompts", "create", "greet", "--template", "Hi {{ name }}"],
        ["datasets", "create", "qa", "-f", str(items)],
        ["prompts", "create", "tone", "--template", "Be brief."],
    ):
        assert roost.invoke(app, command).exit_code == 0, command
    experiment = roost_home / "experiment.yaml"
    experiment.write_text(
        "name: trial\nagent: reader\nvariants:\n"
        "  - {name: a, prompt: tone}\n  - {name: b, prompt: greet}\n"
    )
    assert roost.invoke(app, ["experiments", "create", str(experiment)]).exit_code == 0
    arguments = {
        ("traces", "show"): [trace_id],
        ("agents", "show"): ["reader"], ("approvals", "show"): [approval_id],
        ("tools", "show"): ["calculate"], ("kb", "search"): ["birds"],
        ("memory", "search"): ["birds"], ("prompts", "show"): ["greet"],
        ("datasets", "show"): ["qa"], ("evals", "show"): [eval_id],
        ("experiments", "show"): ["trial"],
    }  # fmt: skip
    checked = set()
    for path in LISTINGS:
        if path in NEEDS_SERVER:
            continue
        result = roost.invoke(app, [*path, *arguments.get(path, []), "--json"])
        assert result.exit_code == 0, (path, result.output)
        data = json.loads(result.stdout)  # one document, nothing else on stdout
        assert isinstance(data, list | dict), path
        checked.add(path)
    assert checked == set(LISTINGS) - NEEDS_SERVER
    shown = json.loads(roost.invoke(app, ["agents", "show", "reader", "--json"]).stdout)
    assert shown["spec"]["tools"] == ["read_file"]
    hits = json.loads(roost.invoke(app, ["kb", "search", "birds", "--json"]).stdout)
    assert hits[0]["uri"].endswith("roost.md") and hits[0]["citation"]
    approvals = json.loads(roost.invoke(app, ["approvals", "list", "--json"]).stdout)
    assert [a["id"] for a in approvals] == [approval_id]
