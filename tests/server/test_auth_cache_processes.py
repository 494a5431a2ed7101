"""Keys cached by one `roost serve` process stop working when another process changes them:
two servers on one PostgreSQL database (revoke on one, refused on the other within the
NOTIFY's time), and on SQLite a server and the `roost keys` CLI on one home (refused from
the very next request). Both servers trust cached keys for 300 s here, so only the change
signal can explain a refusal within the bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from roost.security.auth_changes import APPLICATION_NAME
from tests.support.process import ServerProcess, run_roost, start_server

pytestmark = pytest.mark.slow
KEY = "test-auth-cache-key-0123456789abcdef"
BOUND_S = 2.0  # documented: milliseconds normally; the margin is for a loaded machine


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"ROOST_HOME": str(home), "ROOST_API_KEY": KEY, "ROOST_ENGINE__ENABLED": "false",
            "ROOST_MEMORY__EMBEDDER": "hashing", "ROOST_MEMORY__CONSOLIDATION_INTERVAL_S": "0",
            "ROOST_AUTH__KEY_CACHE_TTL_S": "300", **extra}  # fmt: skip


def _client(server: ServerProcess, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"},
                        timeout=30)  # fmt: skip


def _member_key(server: ServerProcess) -> tuple[str, str, str]:
    """(tenant id, key id, secret) of a new member key in a new tenant."""
    with _client(server) as admin:
        tenant = admin.post("/admin/tenants", json={"name": f"t{time.time_ns()}"}).json()
        made = admin.post(f"/admin/tenants/{tenant['id']}/keys", json={"role": "member"})
        assert made.status_code == 201, made.text
        return tenant["id"], made.json()["id"], made.json()["key"]


def _within(bound_s: float, outcome: Callable[[], bool]) -> float:
    """Seconds until ``outcome()`` holds; fails past ``bound_s``."""
    started = time.monotonic()
    while not outcome():
        assert time.monotonic() - started < bound_s, f"not seen within {bound_s} s"
    return time.monotonic() - started


@pytest.mark.postgres
def test_revoke_on_one_server_is_refused_on_the_other(postgres_url: str, tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as starting:  # both start at once: half the wait
        one, two = starting.map(
            lambda name: start_server(_env(tmp_path / name, ROOST_DATABASE_URL=postgres_url)),
            ["one", "two"],
        )
    try:

        async def listeners() -> int:
            conn = await asyncpg.connect(postgres_url)
            try:
                return int(await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                    " AND datname = current_database()", APPLICATION_NAME,
                ))  # fmt: skip
            finally:
                await conn.close()

        # Both servers listen, so both serve keys from memory (not a database read each).
        _within(30, lambda: asyncio.run(listeners()) == 2)
        tenant_id, key_id, secret = _member_key(one)
        with _client(two, secret) as member, _client(one) as admin:
            for _ in range(3):
                assert member.get("/v1/agents").status_code == 200
            keys = f"/admin/tenants/{tenant_id}/keys/{key_id}"
            # A role change on one: the other refuses what a viewer may not do.
            assert admin.patch(keys, json={"role": "viewer"}).status_code == 200
            _within(BOUND_S, lambda: member.post("/v1/threads", json={}).status_code == 403)
            assert member.get("/v1/agents").status_code == 200
            # Revocation on one: the other answers 401.
            assert admin.delete(keys).status_code == 204
            took = _within(BOUND_S, lambda: member.get("/v1/agents").status_code == 401)
            assert took < BOUND_S
            # A disabled tenant: its owner's cached key stops on the other server too.
            made = admin.post(f"/admin/tenants/{tenant_id}/keys", json={"role": "owner"}).json()
            with _client(two, made["key"]) as owner:
                assert owner.get("/v1/agents").status_code == 200
                assert admin.post(f"/admin/tenants/{tenant_id}/disable").status_code == 200
                _within(BOUND_S, lambda: owner.get("/v1/agents").status_code == 401)
    finally:
        one.stop()
        two.stop()


def test_cli_revoke_is_refused_by_the_next_request_on_sqlite(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    server = start_server(env)
    try:
        _, key_id, secret = _member_key(server)
        with _client(server, secret) as member:
            for _ in range(3):
                assert member.get("/v1/agents").status_code == 200
            revoked = run_roost("keys", "revoke", key_id, env=env)
            assert revoked.returncode == 0, revoked.stdout + revoked.stderr
            refused = member.get("/v1/agents")
            assert refused.status_code == 401 and "revoked" in refused.text
    finally:
        server.stop()
