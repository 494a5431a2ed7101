"""An app on a fresh Roost home, driven in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from roost.config import Settings, load_settings
from roost.server.app import create_app

BOOTSTRAP_KEY = "test-bootstrap-key-0123456789abcdef"

AppFactory = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
def make_app(roost_home: Path) -> AppFactory:
    """Start an app with extra ``ROOST_*`` settings; yields (app, client) with lifespan run."""

    @asynccontextmanager
    async def factory(
        env: dict[str, str] | None = None, customize: Callable[[FastAPI], None] | None = None
    ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        settings: Settings = load_settings(
            env={
                "ROOST_HOME": str(roost_home),
                "ROOST_API_KEY": BOOTSTRAP_KEY,
                # Tests that need the model hand the shared engine to the app (api/conftest.py).
                "ROOST_ENGINE__ENABLED": "false",
                **(env or {}),
            }
        )
        app = create_app(settings)
        if customize is not None:
            customize(app)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://roost") as client:
                yield app, client

    return factory


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_app() as (_, client):
        yield client


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
