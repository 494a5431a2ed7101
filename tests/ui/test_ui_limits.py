"""UI pages count against the caller's requests per minute, as API calls do."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from roost.config import load_settings
from roost.server.app import create_app

KEY = "ui-limits-key-0123456789abcdef"


async def test_pages_past_the_tenants_request_limit_get_429(tmp_path: Path) -> None:
    settings = load_settings(
        env={"ROOST_HOME": str(tmp_path), "ROOST_API_KEY": KEY, "ROOST_ENGINE__ENABLED": "false",
             "ROOST_MEMORY__EMBEDDER": "hashing",
             "ROOST_LIMITS__TENANT__REQUESTS_PER_MINUTE": "3"}
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://roost") as client:
            form = (await client.get("/ui/login")).text
            token = re.search(r'name="csrf" value="([^"]+)"', form)
            assert token is not None
            done = await client.post("/ui/login", data={"csrf": token.group(1), "api_key": KEY})
            assert done.status_code == 303
            statuses = [(await client.get("/ui/agents")).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
