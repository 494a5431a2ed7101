"""A real ``roost serve`` app on a loopback port (in a thread of the test process, model-free:
scripted models stand in for the engine), seeded with agents, tools and a second tenant,
and Debian's chromium driven by Playwright for the browser tests."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from roost.config import load_settings
from roost.llm.messages import Message, ToolCallPart
from roost.llm.testing import CallInfo, FunctionModel
from roost.security.principal import Principal, Role
from roost.server.app import create_app
from tests.agents.conftest import ToolLog, make_test_tools
from tests.support.tool_results import tool_texts
from tests.support.uvicorn_thread import ThreadedServer

BOOTSTRAP_KEY = "test-ui-bootstrap-key-0123456789"
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
T = TypeVar("T")


class _LoopCapture:
    """The app behind an ASGI shim that remembers the server's event loop, so a test can
    run kernel calls on it (the services are bound to that loop)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


def answer_after_tools(info: CallInfo) -> Message | str:
    """Calls ``add``, then answers with its result, echoing the user's last words (so that
    text a test injects comes back as model output)."""
    results = tool_texts(info)
    asked = next((m.text for m in reversed(info.messages) if m.role == "user"), "")
    if not results:
        return Message("assistant", (ToolCallPart("call_0", "add", '{"a": 2, "b": 40}'),))
    return f"the sum is {results[-1]}; you said: {asked}"


def drop_after_approval(info: CallInfo) -> Message | str:
    """Asks to call the destructive ``drop_table`` (which needs approval), then reports."""
    results = tool_texts(info)
    if not results:
        return Message("assistant", (ToolCallPart("call_0", "drop_table", '{"table": "users"}'),))
    return f"done: {results[-1]}"


def gated(gate: threading.Event) -> Any:
    """A model that answers only once the test opens ``gate``: the run is seen running."""

    async def answer(info: CallInfo) -> str:
        await asyncio.to_thread(gate.wait, 30)
        return "the gate opened and the run went on"

    return answer


@dataclass
class UiServer:
    url: str
    app: Any
    capture: _LoopCapture
    tenant_id: str
    other_key: str
    tools: ToolLog
    gate: threading.Event = field(default_factory=threading.Event)
    seeded: dict[str, Any] = field(default_factory=dict)

    def run(self, work: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
        """Run ``work`` on the server's loop and wait for its result."""
        assert self.capture.loop is not None

        async def wrapped() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(wrapped(), self.capture.loop).result(30)

    def api(self, key: str = BOOTSTRAP_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"})

    def session_for(self, role: Role, *, tenant_id: str | None = None) -> str:
        """A UI session token for a principal of ``role`` (keys cannot carry roles on this
        branch yet: the session is made directly in the store the sign-in writes to)."""
        principal = Principal(tenant_id or self.tenant_id, "ui-test-key", role)
        token, _ = self.run(self.app.state.web_sessions.create(principal))
        return str(token)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    home = tmp_path_factory.mktemp("h-ui-home")
    settings = load_settings(
        env={"ROOST_HOME": str(home), "ROOST_API_KEY": BOOTSTRAP_KEY,
             "ROOST_ENGINE__ENABLED": "false", "ROOST_MEMORY__EMBEDDER": "hashing"}
    )  # fmt: skip
    app = create_app(settings)
    capture = _LoopCapture(app)
    server = ThreadedServer(capture).start()
    gate = threading.Event()
    try:
        state = app.state
        log = ToolLog()
        tenant_id = str(state.default_tenant_id)
        ui = UiServer(server.url, app, capture, tenant_id, "", log, gate)

        async def seed() -> str:
            for model_id, script in (
                ("function:calc", answer_after_tools),
                ("function:dropper", drop_after_approval),
                ("function:gated", gated(gate)),
            ):
                state.llm.router.registry.register(FunctionModel(script, model_id))
            state.tools.registry.add_for_tenant(tenant_id, make_test_tools(log))
            other = await state.platform.tenants.create("other-tenant")
            _, key = await state.platform.api_keys.create(other.id, "other")
            return key

        ui.other_key = ui.run(seed())
        with ui.api() as client:
            for spec in (
                {"name": "calc", "model": "function:calc", "tools": ["add"],
                 "description": f"adds numbers {XSS}"},
                {"name": "dropper", "model": "function:dropper", "tools": ["drop_table"]},
                {"name": "gated", "model": "function:gated"},
            ):  # fmt: skip
                created = client.post("/v1/agents", json={"spec": spec})
                assert created.status_code == 201, created.text
        yield ui
    finally:
        gate.set()  # no run stays parked on the gate past the tests
        server.stop()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: httpx.Client, key: str = BOOTSTRAP_KEY) -> None:
    """Sign ``client`` in through the form, as a browser does."""
    form = client.get("/ui/login")
    assert form.status_code == 200
    done = client.post(
        "/ui/login", data={"csrf": csrf_of(form.text), "api_key": key, "next": "/ui/runs"}
    )
    assert done.status_code == 303, done.text
