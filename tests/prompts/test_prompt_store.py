"""Prompt versions, labels and the sandboxed renderer on a real SQLite store; the cache
serves stale while the store is unreachable (its file's directory moved away)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.errors import InvalidRequest, NotFound, StorageUnavailable
from roost.prompts.service import PromptService
from roost.prompts.store import PromptConfig, PromptRef
from roost.prompts.template import check_template, render
from roost.storage import Database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def open_service(url: str, clock: Clock) -> tuple[Database, PromptService]:
    database = await Database.connect(url)
    opened = await PromptService.open(database)
    return database, PromptService(opened.store, cache_ttl_s=5, stale_for_s=60, clock=clock)


async def test_versions_are_immutable_and_labels_move(database_url: str) -> None:
    database, service = await open_service(database_url, Clock())
    store = service.store
    try:
        v1, created = await store.create("t1", "greet", "Hello {{ name }}", labels=("production",))
        assert (v1.version, created, v1.variables) == (1, True, ("name",))
        again, created = await store.create("t1", "greet", "Hello {{ name }}")
        assert (again.version, created) == (1, False)  # identical: no new version
        v2, _ = await store.create(
            "t1", "greet", "Hi {{ name }}!", config=PromptConfig(model="m", temperature=0.2),
            labels=("staging",),
        )  # fmt: skip
        assert v2.version == 2
        assert (await store.get("t1", PromptRef.parse("greet@production"))).version == 1
        assert (await store.get("t1", PromptRef.parse("greet"))).version == 2
        assert (await store.get("t1", PromptRef.parse("greet@1"))).template == "Hello {{ name }}"
        moved = await store.label("t1", "greet", "production", 2)
        assert set(moved.labels) == {"production", "staging"}
        assert (
            await store.get("t1", PromptRef.parse("greet@production"))
        ).config.temperature == 0.2
        assert [v.version for v in await store.versions("t1", "greet")] == [2, 1]
        with pytest.raises(NotFound):  # another tenant's prompt does not exist for it
            await store.get("t2", PromptRef.parse("greet@production"))
        with pytest.raises(InvalidRequest):
            await store.label("t1", "greet", "latest", 1)
        with pytest.raises(InvalidRequest):
            await store.create("t1", "bad", "{% if %}")
    finally:
        await database.close()


def test_templates_render_in_a_sandbox_with_strict_variables() -> None:
    assert render("{{ a }} and {{ b | upper }}", {"a": "x", "b": "y"}) == "x and Y"
    with pytest.raises(InvalidRequest, match="'b' is undefined"):
        render("{{ a }} {{ b }}", {"a": 1})
    with pytest.raises(InvalidRequest, match="sandbox"):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
    assert check_template("{% for x in items %}{{ x }}{% endfor %}{{ title }}") == [
        "items", "title",
    ]  # fmt: skip


async def test_cache_serves_stale_while_the_store_is_unreachable(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    clock = Clock()
    database, service = await open_service(f"sqlite:///{folder / 'p.db'}", clock)
    try:
        await service.store.create("t1", "greet", "Hello", labels=("production",))
        await service.store.create("t1", "other", "Other")
        first = await service.resolve("t1", "greet@production")
        # The database goes away: its connections closed, its directory moved.
        await database.engine.dispose()
        folder.rename(tmp_path / "gone")
        clock.now += 2  # fresh: served from the cache without asking
        assert (await service.resolve("t1", "greet@production")) is first
        clock.now += 10  # past the TTL: the store fails, the stale copy is served
        assert (await service.resolve("t1", "greet@production")).template == "Hello"
        assert service.stale_served == 1
        with pytest.raises(StorageUnavailable):  # never resolved here: nothing to serve
            await service.resolve("t1", "other")
        clock.now += 120  # past the grace too: fail rather than serve an old version forever
        with pytest.raises(StorageUnavailable):
            await service.resolve("t1", "greet@production")
        # The store is back: resolution works again and refreshes the cache.
        (tmp_path / "gone").rename(folder)
        assert (await service.resolve("t1", "greet@production")).version == 1
    finally:
        await database.close()
