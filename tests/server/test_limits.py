"""Limits over HTTP: 429 in each API's own shape with Retry-After, shared by two apps on
one store, concurrency slots held until the response ends, the login throttle, 431, and
per-tenant overrides through the admin API. Official SDKs are the clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import openai
import pytest
from fastapi import FastAPI

from tests.server.conftest import BOOTSTRAP_KEY, AppFactory

KEY = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


async def test_requests_per_minute_answer_429_in_each_dialect(make_app: AppFactory) -> None:
    env = {"ROOST_LIMITS__KEY__REQUESTS_PER_MINUTE": "3"}
    async with make_app(env) as (_, client):
        oai = openai.AsyncOpenAI(
            base_url="http://roost/v1", api_key=BOOTSTRAP_KEY, http_client=client, max_retries=0
        )
        for _ in range(3):
            await oai.models.list()
        with pytest.raises(openai.RateLimitError) as refused:
            await oai.models.list()
        error = refused.value
        assert error.status_code == 429
        assert error.body["type"] == "rate_limit_error"  # type: ignore[index]
        assert "requests_per_minute of API key" in error.message
        # A token comes back every 20 s: the client is told to wait that long, rounded up.
        assert 19 <= int(error.response.headers["retry-after"]) <= 20
        assert error.response.headers["x-roost-limit"].startswith("requests_per_minute")

        # (The Anthropic SDK cannot ride an in-process transport; tests/api has it live.)
        message = await client.post(
            "/v1/messages/count_tokens",
            headers={**KEY, "anthropic-version": "2023-06-01"},
            json={"model": "any", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert message.status_code == 429
        assert message.json()["type"] == "error"
        assert message.json()["error"]["type"] == "rate_limit_error"

        problem = await client.get("/v1/usage", headers=KEY)
        assert problem.status_code == 429
        assert problem.headers["content-type"] == "application/problem+json"
        assert problem.json()["type"] == "urn:roost:problem:rate_limited"
        assert problem.json()["limit"].startswith("requests_per_minute of API key")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_two_servers_on_one_store_enforce_one_limit(
    make_app: AppFactory, backend: str, request: pytest.FixtureRequest
) -> None:
    env = {"ROOST_LIMITS__TENANT__REQUESTS_PER_MINUTE": "10"}
    if backend == "redis":
        env["ROOST_REDIS_URL"] = request.getfixturevalue("redis_url")
    async with make_app(env) as (_, one), make_app(env) as (app_two, two):
        assert app_two.state.limits.store.backend == backend
        answers = await asyncio.gather(
            *(client.get("/v1/models", headers=KEY) for _ in range(12) for client in (one, two))
        )
    assert sorted(r.status_code for r in answers) == [200] * 10 + [429] * 14


def _holding_route(release: asyncio.Event, entered: asyncio.Event) -> Callable[[FastAPI], None]:
    def customize(app: FastAPI) -> None:
        # Under /v1/completions, so the limiter counts it as a model call.
        @app.post("/v1/completions/hold")
        async def hold() -> dict[str, bool]:
            entered.set()
            await release.wait()
            return {"ok": True}

    return customize


async def test_a_concurrency_slot_is_held_until_the_response_is_sent(
    make_app: AppFactory,
) -> None:
    release, entered = asyncio.Event(), asyncio.Event()
    env = {"ROOST_LIMITS__KEY__CONCURRENCY": "1"}
    async with make_app(env, _holding_route(release, entered)) as (_, client):
        first = asyncio.ensure_future(client.post("/v1/completions/hold", headers=KEY))
        await entered.wait()
        second = await client.post("/v1/completions/hold", headers=KEY)
        assert second.status_code == 429
        assert second.json()["error"]["type"] == "rate_limit_error"
        assert "concurrency of API key" in second.json()["error"]["message"]
        # Other routes are not model calls: they do not need a slot.
        assert (await client.get("/v1/models", headers=KEY)).status_code == 200
        release.set()
        assert (await first).status_code == 200
        entered.clear()
        third = await client.post("/v1/completions/hold", headers=KEY)
        assert third.status_code == 200


async def test_failed_attempts_lock_a_key_id_even_for_its_right_secret(
    make_app: AppFactory,
) -> None:
    env = {"ROOST_LIMITS__AUTH__FAILURES_PER_KEY": "3"}
    async with make_app(env) as (app, client):
        _, key = await app.state.platform.api_keys.create(app.state.default_tenant_id, "k")
        wrong = key[: key.rindex("-") + 1] + "wrong-secret-guess"
        statuses = [
            (await client.get("/v1/models", headers={"x-api-key": wrong})).status_code
            for _ in range(3)
        ]
        assert statuses == [401, 401, 429]
        right = await client.get("/v1/models", headers={"x-api-key": key})
        assert right.status_code == 429
        assert "failed attempts for API key" in right.json()["error"]["message"]
        # Another key is not affected.
        assert (await client.get("/v1/models", headers=KEY)).status_code == 200


async def test_failed_attempts_from_one_address_are_throttled(make_app: AppFactory) -> None:
    env = {"ROOST_LIMITS__AUTH__FAILURES_PER_ADDRESS": "4"}
    async with make_app(env) as (_, client):
        statuses = [
            (await client.get("/v1/usage", headers={"x-api-key": f"guess-{n:020d}"})).status_code
            for n in range(6)
        ]
    assert statuses == [401, 401, 401, 429, 429, 429]


async def test_oversized_headers_get_431(make_app: AppFactory) -> None:
    async with make_app({"ROOST_SERVER__MAX_HEADER_BYTES": "4096"}) as (_, client):
        response = await client.get("/v1/usage", headers={**KEY, "x-padding": "a" * 8000})
        assert response.status_code == 431
        assert response.json()["type"] == "urn:roost:problem:headers_too_large"
        assert (await client.get("/v1/usage", headers=KEY)).status_code == 200


async def test_admin_sets_a_tenant_override_that_applies_at_once(make_app: AppFactory) -> None:
    env = {"ROOST_LIMITS__OVERRIDES_REFRESH_S": "0"}
    async with make_app(env) as (app, client):
        platform = app.state.platform
        acme = await platform.tenants.create("acme")
        _, acme_key = await platform.api_keys.create(acme.id, "k")
        acme_auth = {"x-api-key": acme_key}
        body = {"tenant": {"requests_per_minute": 2}, "key": {"concurrency": 0}}
        forbidden = await client.put(f"/admin/limits/{acme.id}", json=body, headers=acme_auth)
        assert forbidden.status_code == 403
        answer = await client.put(f"/admin/limits/{acme.id}", json=body, headers=KEY)
        assert answer.status_code == 200
        effective = answer.json()["effective"]
        assert effective["tenant"]["requests_per_minute"] == 2
        assert effective["key"]["concurrency"] == 0  # no limit
        assert effective["key"]["requests_per_minute"] == 1200  # roost.toml's default
        codes = [(await client.get("/v1/models", headers=acme_auth)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        listed = (await client.get("/admin/limits", headers=KEY)).json()["data"]
        assert {row["tenant_id"] for row in listed} >= {acme.id, app.state.default_tenant_id}
        assert (await client.delete(f"/admin/limits/{acme.id}", headers=KEY)).json()["removed"]
        unknown = await client.get("/admin/limits/no-such-tenant", headers=KEY)
        assert unknown.status_code == 404


async def test_limits_off_lets_everything_through(make_app: AppFactory) -> None:
    env = {"ROOST_LIMITS__ENABLED": "false", "ROOST_LIMITS__KEY__REQUESTS_PER_MINUTE": "1"}
    async with make_app(env) as (_, client):
        codes = {(await client.get("/v1/models", headers=KEY)).status_code for _ in range(3)}
    assert codes == {200}
