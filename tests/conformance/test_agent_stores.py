"""The agents layer's stores behave the same on SQLite and PostgreSQL.

RunStore (threads and runs) and AgentRegistry (versions and tags), through their public
methods only: every read is scoped to a tenant, and a run's status moves only as asked.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import pytest

from roost.agents.registry import AgentRegistry
from roost.agents.schema import AGENT_MIGRATIONS
from roost.agents.spec import AgentSpec
from roost.agents.store import RunRecord, RunStore
from roost.errors import InvalidRequest, NotFound
from roost.security.schema import CORE_MIGRATIONS
from roost.security.tenants import TenantStore
from roost.storage import Database, migrate


class Tenants(NamedTuple):
    acme: str
    globex: str


@pytest.fixture
async def tenants(database: Database) -> Tenants:
    await migrate(database, CORE_MIGRATIONS)
    await migrate(database, AGENT_MIGRATIONS)
    store = TenantStore(database)
    return Tenants((await store.create("acme")).id, (await store.create("globex")).id)


@pytest.fixture
def runs(database: Database, tenants: Tenants) -> RunStore:
    return RunStore(database)


@pytest.fixture
def registry(database: Database, tenants: Tenants) -> AgentRegistry:
    return AgentRegistry(database)


def run_record(tenant_id: str, thread_id: str, run_id: str, **fields: object) -> RunRecord:
    values: dict[str, object] = {"agent": "helper", "agent_version": 1, "status": "queued"}
    values |= fields
    return RunRecord(
        id=run_id,
        tenant_id=tenant_id,
        thread_id=thread_id,
        input={"messages": [{"role": "user", "content": "hi ü"}]},
        **values,  # type: ignore[arg-type]
    )


# --- threads -----------------------------------------------------------------------------


async def test_thread_round_trips_metadata(runs: RunStore, tenants: Tenants) -> None:
    created = await runs.create_thread(tenants.acme, {"topic": "billing", "n": [1, 2]})
    assert created.id.startswith("thr")
    fetched = await runs.get_thread(tenants.acme, created.id)
    assert fetched == created
    assert fetched.metadata == {"topic": "billing", "n": [1, 2]}
    assert fetched.to_dict()["object"] == "thread"


async def test_thread_takes_a_given_id_and_defaults_to_empty_metadata(
    runs: RunStore, tenants: Tenants
) -> None:
    created = await runs.create_thread(tenants.acme, thread_id="thr_chosen")
    assert (await runs.get_thread(tenants.acme, "thr_chosen")).metadata == {}
    assert created.id == "thr_chosen"


async def test_threads_of_one_tenant_are_invisible_to_another(
    runs: RunStore, tenants: Tenants
) -> None:
    thread = await runs.create_thread(tenants.acme)
    with pytest.raises(NotFound):
        await runs.get_thread(tenants.globex, thread.id)
    with pytest.raises(NotFound):
        await runs.get_thread(tenants.acme, "thr_missing")


# --- runs --------------------------------------------------------------------------------


async def test_run_round_trips_and_touches_its_thread(runs: RunStore, tenants: Tenants) -> None:
    thread = await runs.create_thread(tenants.acme)
    run = await runs.create_run(
        run_record(tenants.acme, thread.id, "run_1", agent_version=3, webhook="http://127.0.0.1/h")
    )
    assert (run.id, run.thread_id, run.agent, run.agent_version) == (
        "run_1", thread.id, "helper", 3,
    )  # fmt: skip
    assert run.status == "queued" and run.output is None and run.error is None
    assert run.input == {"messages": [{"role": "user", "content": "hi ü"}]}
    assert run.usage == {} and run.interrupts == [] and run.webhook == "http://127.0.0.1/h"
    assert run.created_at == run.updated_at > 0
    assert await runs.get_run(tenants.acme, "run_1") == run
    assert (await runs.get_thread(tenants.acme, thread.id)).updated_at == run.created_at


async def test_runs_of_one_tenant_are_invisible_to_another(
    runs: RunStore, tenants: Tenants
) -> None:
    thread = await runs.create_thread(tenants.acme)
    await runs.create_run(run_record(tenants.acme, thread.id, "run_a"))
    with pytest.raises(NotFound):
        await runs.get_run(tenants.globex, "run_a")
    assert await runs.list_runs(tenants.globex, thread.id) == []
    with pytest.raises(NotFound):
        await runs.get_run(tenants.acme, "run_missing")


async def test_find_run_needs_no_tenant(runs: RunStore, tenants: Tenants) -> None:
    thread = await runs.create_thread(tenants.globex)
    created = await runs.create_run(run_record(tenants.globex, thread.id, "run_g"))
    assert await runs.find_run("run_g") == created
    with pytest.raises(NotFound):
        await runs.find_run("run_missing")


async def test_list_runs_filters_by_thread_newest_first_with_a_limit(
    runs: RunStore, tenants: Tenants
) -> None:
    one = await runs.create_thread(tenants.acme)
    two = await runs.create_thread(tenants.acme)
    # Ids rise with creation: newest first holds whether or not two share a millisecond.
    for run_id in ("run_a", "run_b", "run_c"):
        await runs.create_run(run_record(tenants.acme, one.id, run_id))
    await runs.create_run(run_record(tenants.acme, two.id, "run_z"))
    assert [r.id for r in await runs.list_runs(tenants.acme, one.id)] == ["run_c", "run_b", "run_a"]
    assert [r.id for r in await runs.list_runs(tenants.acme, one.id, limit=2)] == [
        "run_c", "run_b",
    ]  # fmt: skip
    assert [r.id for r in await runs.list_runs(tenants.acme, two.id)] == ["run_z"]


async def test_update_run_sets_status_and_results(runs: RunStore, tenants: Tenants) -> None:
    thread = await runs.create_thread(tenants.acme)
    await runs.create_run(run_record(tenants.acme, thread.id, "run_1"))
    assert await runs.update_run("run_1", status="running", workflow_id="wf-1")
    interrupts = [{"id": "i1", "value": {"tool": "drop_table"}}]
    assert await runs.update_run(
        "run_1",
        status="interrupted",
        output={"text": "ok", "n": 2},
        usage={"input_tokens": 5, "output_tokens": 7},
        interrupts=interrupts,
        error="needs approval",
    )
    run = await runs.get_run(tenants.acme, "run_1")
    assert run.status == "interrupted" and run.workflow_id == "wf-1"
    assert run.output == {"text": "ok", "n": 2}
    assert run.usage == {"input_tokens": 5, "output_tokens": 7}
    assert run.interrupts == interrupts and run.error == "needs approval"
    assert run.updated_at >= run.created_at
    assert not await runs.update_run("run_missing", status="running")


async def test_update_run_only_if_guards_the_transition(runs: RunStore, tenants: Tenants) -> None:
    thread = await runs.create_thread(tenants.acme)
    await runs.create_run(run_record(tenants.acme, thread.id, "run_1"))
    assert await runs.update_run("run_1", status="cancelled", only_if=("queued", "running"))
    # A cancelled run never becomes succeeded, and the refused update writes nothing.
    refused = await runs.update_run(
        "run_1", status="succeeded", only_if=("queued", "running"), output="late"
    )
    assert not refused
    run = await runs.get_run(tenants.acme, "run_1")
    assert run.status == "cancelled" and run.output is None
    assert await runs.update_run("run_1", status="queued", only_if=("cancelled",))
    assert (await runs.get_run(tenants.acme, "run_1")).status == "queued"


async def test_unfinished_runs_are_seen_across_tenants(runs: RunStore, tenants: Tenants) -> None:
    assert not await runs.has_unfinished_runs()
    thread = await runs.create_thread(tenants.globex)
    await runs.create_run(run_record(tenants.globex, thread.id, "run_1"))
    assert await runs.has_unfinished_runs()
    await runs.update_run("run_1", status="running")
    assert await runs.has_unfinished_runs()
    await runs.update_run("run_1", status="succeeded")
    assert not await runs.has_unfinished_runs()


# --- agent registry ----------------------------------------------------------------------


def spec(name: str = "helper", **fields: object) -> AgentSpec:
    return AgentSpec(name=name, **fields)  # type: ignore[arg-type]


async def test_registering_a_spec_numbers_versions_from_one(
    registry: AgentRegistry, tenants: Tenants
) -> None:
    first, created = await registry.create(tenants.acme, spec(instructions="Be brief."))
    assert (first.version, created) == (1, True)
    again, created = await registry.create(tenants.acme, spec(instructions="Be brief."))
    assert (again.version, created) == (1, False)
    second, created = await registry.create(tenants.acme, spec(instructions="Be kind."))
    assert (second.version, created) == (2, True)
    assert second.spec.instructions == "Be kind." and second.digest != first.digest
    assert (await registry.get(tenants.acme, "helper")).version == 2
    assert (await registry.get(tenants.acme, "helper", "latest")).version == 2
    assert (await registry.get(tenants.acme, "helper", 1)).spec.instructions == "Be brief."
    assert (await registry.get(tenants.acme, "helper", "1")).version == 1
    assert [v.version for v in await registry.versions(tenants.acme, "helper")] == [2, 1]


async def test_tags_point_at_one_version_and_move(
    registry: AgentRegistry, tenants: Tenants
) -> None:
    await registry.create(tenants.acme, spec(instructions="v1"), tags=("prod",))
    await registry.create(tenants.acme, spec(instructions="v2"), tags=("staging",))
    assert (await registry.get(tenants.acme, "helper", "prod")).version == 1
    assert (await registry.get(tenants.acme, "helper", 2)).tags == ("staging",)
    await registry.tag(tenants.acme, "helper", "prod", 2)
    assert (await registry.get(tenants.acme, "helper", "prod")).version == 2
    assert (await registry.get(tenants.acme, "helper", 2)).tags == ("prod", "staging")
    assert (await registry.get(tenants.acme, "helper", 1)).tags == ()


async def test_bad_tags_and_unknown_references_are_refused(
    registry: AgentRegistry, tenants: Tenants
) -> None:
    await registry.create(tenants.acme, spec())
    for bad in ("latest", "7"):
        with pytest.raises(InvalidRequest):
            await registry.tag(tenants.acme, "helper", bad, 1)
    with pytest.raises(NotFound):
        await registry.tag(tenants.acme, "helper", "prod", 9)
    for ref in (9, "nope"):
        with pytest.raises(NotFound):
            await registry.get(tenants.acme, "helper", ref)
    with pytest.raises(NotFound):
        await registry.get(tenants.acme, "ghost")
    with pytest.raises(NotFound):
        await registry.versions(tenants.acme, "ghost")


async def test_list_shows_the_newest_version_of_each_agent_by_name(
    registry: AgentRegistry, tenants: Tenants
) -> None:
    await registry.create(tenants.acme, spec("writer"))
    await registry.create(tenants.acme, spec("analyst", instructions="one"))
    await registry.create(tenants.acme, spec("analyst", instructions="two"), tags=("prod",))
    listed = await registry.list(tenants.acme)
    assert [(a.name, a.version, a.tags) for a in listed] == [
        ("analyst", 2, ("prod",)), ("writer", 1, ()),
    ]  # fmt: skip


async def test_agents_of_one_tenant_are_invisible_to_another(
    registry: AgentRegistry, tenants: Tenants
) -> None:
    await registry.create(tenants.acme, spec(instructions="acme's"), tags=("prod",))
    await registry.create(tenants.acme, spec(instructions="acme's, again"))
    assert await registry.list(tenants.globex) == []
    with pytest.raises(NotFound):
        await registry.get(tenants.globex, "helper", "prod")
    # The same name in another tenant starts its own numbering.
    theirs, created = await registry.create(tenants.globex, spec(instructions="globex's"))
    assert (theirs.version, created) == (1, True)
    assert (await registry.get(tenants.acme, "helper")).spec.instructions == "acme's, again"


async def test_concurrent_registrations_get_distinct_versions(
    registry: AgentRegistry, tenants: Tenants
) -> None:
    specs = [spec(instructions=f"variant {n}") for n in range(3)]
    results = await asyncio.gather(*(registry.create(tenants.acme, s) for s in specs))
    assert sorted(version.version for version, _ in results) == [1, 2, 3]
    assert all(created for _, created in results)
    stored = {v.spec.instructions for v in await registry.versions(tenants.acme, "helper")}
    assert stored == {s.instructions for s in specs}
