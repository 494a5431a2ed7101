"""The one list of migrations knows every component a running Roost creates: backups,
restores and store moves depend on it (a component missing from it makes every archive
look as if it came from a newer Roost)."""

from __future__ import annotations

from roost.platform.schema import known_schema_versions, stored_schema_versions
from tests.server.conftest import AppFactory


async def test_every_component_a_server_migrates_is_in_the_catalog(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        # a request through every layer that migrates lazily
        assert (await client.get("/v1/models")).status_code == 200
        stored = await stored_schema_versions(app.state.platform.database)
    known = known_schema_versions()
    assert stored, "the server created no tables"
    missing = {c: v for c, v in stored.items() if known.get(c, 0) < v}
    assert missing == {}, f"components the catalog does not know: {missing}"
