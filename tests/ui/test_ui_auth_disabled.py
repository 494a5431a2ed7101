"""With authentication disabled (local development) the UI asks for no key: signing in
acts for the default tenant, as every API request then does."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from roost.config import load_settings
from roost.server.app import create_app


async def test_sign_in_without_a_key_when_auth_is_disabled(tmp_path: Path) -> None:
    settings = load_settings(
        env={"ROOST_HOME": str(tmp_path), "ROOST_AUTH": "disabled",
             "ROOST_ENGINE__ENABLED": "false", "ROOST_MEMORY__EMBEDDER": "hashing"}
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://roost") as client:
            form = (await client.get("/ui/login")).text
            assert 'name="api_key"' not in form and "Authentication is disabled" in form
            token = re.search(r'name="csrf" value="([^"]+)"', form)
            assert token is not None
            done = await client.post("/ui/login", data={"csrf": token.group(1)})
            assert done.status_code == 303
            runs = await client.get("/ui/runs")
            assert runs.status_code == 200 and "owner" in runs.text
