"""The HTTP shell: health, metrics, auth, errors in each dialect, limits, request ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from roost.errors import RateLimited
from tests.server.conftest import BOOTSTRAP_KEY, AppFactory

PROBLEM = "application/problem+json"


async def test_health_and_metrics_need_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert (
        'roost_http_requests_total{method="GET",route="/health/ready",status="200"}' in metrics.text
    )


async def test_missing_key_is_401_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/anything")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["type"] == "urn:roost:problem:unauthorized"
    assert body["status"] == 401 and "missing API key" in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_bearer_and_x_api_key_both_authenticate(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for headers in (auth, {"x-api-key": BOOTSTRAP_KEY}):
        response = await client.get("/v1/anything", headers=headers)
        assert response.status_code == 404, response.text  # authenticated, then no such route
        assert response.json()["type"] == "urn:roost:problem:not_found"


async def test_errors_take_the_shape_of_the_api_called(client: httpx.AsyncClient) -> None:
    openai = await client.post("/v1/chat/completions", headers={"Authorization": "Bearer bad"})
    assert openai.status_code == 401
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert openai.json()["error"]["message"] == "invalid API key"
    anthropic = await client.post("/v1/messages", headers={"x-api-key": "bad"})
    assert anthropic.status_code == 401
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "authentication_error"


async def test_revoked_key_is_refused(make_app: AppFactory) -> None:
    async with make_app() as (app, client):
        platform = app.state.platform
        key, plaintext = await platform.api_keys.create(app.state.default_tenant_id, "temp")
        headers = {"Authorization": f"Bearer {plaintext}"}
        assert (await client.get("/v1/x", headers=headers)).status_code == 404
        await platform.api_keys.revoke(key.id)
        refused = await client.get("/v1/x", headers=headers)
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]


class Echo(BaseModel):
    text: str
    count: int


def _add_test_routes(app: FastAPI) -> None:
    never = asyncio.Event()

    @app.post("/test/echo")
    async def echo(body: Echo) -> Echo:
        return body

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/test/slow")
    async def slow() -> None:
        await never.wait()

    @app.get("/test/limited")
    async def limited() -> None:
        raise RateLimited("slow down", retry_after_s=2.4)


async def test_body_over_limit_is_413_by_header_and_by_stream(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app({"ROOST_SERVER__MAX_BODY_BYTES": "2048"}, _add_test_routes) as (_, client):
        big = b'{"text": "' + b"x" * 4096 + b'", "count": 1}'
        declared = await client.post("/test/echo", content=big, headers=auth)
        assert declared.status_code == 413
        assert declared.json()["type"] == "urn:roost:problem:payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b"x" * 512

        streamed = await client.post("/test/echo", content=chunks(), headers=auth)
        assert streamed.status_code == 413
        ok = await client.post("/test/echo", json={"text": "hi", "count": 2}, headers=auth)
        assert ok.json() == {"text": "hi", "count": 2}


async def test_validation_error_names_the_field(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app(customize=_add_test_routes) as (_, client):
        response = await client.post("/test/echo", json={"text": "hi"}, headers=auth)
        assert response.status_code == 400
        body = response.json()
        assert body["param"] == "count"
        assert body["errors"] == [{"param": "count", "reason": "Field required"}]


async def test_unexpected_error_is_500_without_internals(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app(customize=_add_test_routes) as (_, client):
        response = await client.get("/test/boom", headers=auth)
        assert response.status_code == 500
        assert "secret internal detail" not in response.text
        assert "Traceback" not in response.text
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_slow_request_is_cut_at_the_timeout(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    env = {"ROOST_SERVER__REQUEST_TIMEOUT_S": "0.2"}
    async with make_app(env, _add_test_routes) as (_, client):
        response = await client.get("/test/slow", headers=auth)
        assert response.status_code == 504
        assert response.json()["type"] == "urn:roost:problem:timeout"


async def test_rate_limit_carries_retry_after(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app(customize=_add_test_routes) as (_, client):
        response = await client.get("/test/limited", headers=auth)
        assert response.status_code == 429
        # Rounded up: a client that waits as long as told is not refused again.
        assert response.headers["retry-after"] == "3"


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"x-request-id": "trace-abc.123"})
    assert given.headers["x-request-id"] == "trace-abc.123"
    hostile = await client.get("/health/live", headers={"x-request-id": "bad id\twith junk"})
    assert hostile.headers["x-request-id"] != "bad id\twith junk"
    assert len(hostile.headers["x-request-id"]) == 16


async def test_disabled_auth_acts_for_default_tenant(make_app: AppFactory) -> None:
    async with make_app({"ROOST_AUTH": "disabled"}) as (_, client):
        assert (await client.get("/v1/anything")).status_code == 404


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/health/live")
    assert response.status_code == 405
    assert response.json()["type"] == "urn:roost:problem:method_not_allowed"


async def test_ready_is_503_when_database_goes_away(
    make_app: AppFactory, postgres_server: object, postgres_url: str
) -> None:
    async with make_app({"ROOST_DATABASE_URL": postgres_url}) as (app, client):
        assert (await client.get("/health/ready")).status_code == 200
        name = postgres_url.rsplit("/", 1)[1]
        admin_url = postgres_url.rsplit("/", 1)[0] + "/postgres"
        import asyncpg

        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        finally:
            await admin.close()
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["type"] == "urn:roost:problem:storage_unavailable"
        assert app.state.platform is not None


async def test_ready_includes_redis_when_configured(make_app: AppFactory, redis_url: str) -> None:
    async with make_app({"ROOST_REDIS_URL": redis_url}) as (_, client):
        response = await client.get("/health/ready")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_each_request_is_a_server_span(client: httpx.AsyncClient) -> None:
    from roost.observe.tracing import RECENT_SPANS

    response = await client.get("/health/live", headers={"x-request-id": "span-check-1"})
    assert response.status_code == 200
    spans = [
        s
        for s in RECENT_SPANS.spans()
        if s.attributes and s.attributes.get("roost.request_id") == "span-check-1"
    ]
    assert len(spans) == 1
    assert spans[0].attributes is not None
    assert spans[0].attributes["http.route"] == "/health/live"
    assert spans[0].attributes["http.response.status_code"] == 200
