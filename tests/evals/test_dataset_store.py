"""Dataset versions and feedback on each backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

from roost.errors import InvalidRequest, NotFound
from roost.evals.datasets import DatasetItem, DatasetStore
from roost.evals.feedback import FeedbackStore
from roost.evals.schema import EVAL_MIGRATIONS
from roost.storage import Database, migrate


async def test_datasets_version_on_change_per_tenant(database_url: str) -> None:
    database = await Database.connect(database_url)
    try:
        await migrate(database, EVAL_MIGRATIONS)
        store = DatasetStore(database)
        first = [DatasetItem(input="a", expected="A"), DatasetItem(input={"q": 1}, expected=[1])]
        v1, created = await store.create("t1", "set", first, "letters")
        assert (v1.version, created, v1.item_count) == (1, True, 2)
        assert (await store.create("t1", "set", first, "letters"))[0].version == 1
        v2, _ = await store.add("t1", "set", [DatasetItem(input="b", variables={"x": 1})])
        assert v2.version == 2 and v2.description == "letters"
        assert [i.input for i in (await store.get("t1", "set", 1)).items] == ["a", {"q": 1}]
        assert (await store.get("t1", "set")).items[2].variables == {"x": 1}
        v3, _ = await store.create("t1", "set", first[:1], "letters")  # replaced: new version
        assert (v3.version, v3.item_count) == (3, 1)
        assert [(d.name, d.version) for d in await store.list("t1")] == [("set", 3)]
        assert await store.list("t2") == []
        with pytest.raises(NotFound):
            await store.get("t2", "set")
        with pytest.raises(NotFound):
            await store.add("t2", "set", first)
        with pytest.raises(InvalidRequest):
            await store.add("t1", "set", [])

        feedback = FeedbackStore(database)
        await feedback.add("t1", "run_1", 1.0, "great")
        await feedback.add("t1", "run_1", 0.0)
        assert [f["score"] for f in await feedback.list("t1", "run_1")] == [1.0, 0.0]
        assert await feedback.list("t2", "run_1") == []
        with pytest.raises(InvalidRequest):
            await feedback.add("t1", "run_1", 1.5)
    finally:
        await database.close()
