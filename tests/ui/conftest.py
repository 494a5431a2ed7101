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
from playwright.sync_api import Browser, sync_playwright

from roost.config import load_settings
from roost.llm.messages import Message, ToolCallPart
from roost.llm.testing import CallInfo, FunctionModel
from roost.security.principal import Role
from roost.server.app import create_app
from tests.agents.conftest import ToolLog, make_test_tools
from tests.support.tool_results import tool_texts
from tests.support.uvicorn_thread import ThreadedServer

BOOTSTRAP_KEY = "test-ui-bootstrap-key-0123456789"
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
# A path parameter (an audit record's target) holds no slash: markup without one.
TARGET_XSS = '<img src=x onerror="window.__pwned = 3">'
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
T = TypeVar("T")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


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
    keys: dict[tuple[Role, str, bool], str] = field(default_factory=dict)

    def run(self, work: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
        """Run ``work`` on the server's loop and wait for its result."""
        assert self.capture.loop is not None

        async def wrapped() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(wrapped(), self.capture.loop).result(30)

    def api(self, key: str = BOOTSTRAP_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"})

    def key_for(self, role: Role, *, tenant_id: str | None = None, operator: bool = False) -> str:
        """A real API key of ``role`` (made once per role, tenant and operator flag)."""
        tenant = tenant_id or self.tenant_id
        wanted = (role, tenant, operator)
        if wanted not in self.keys:

            async def create() -> str:
                keys = self.app.state.platform.api_keys
                _, key = await keys.create(tenant, f"ui-{role.value}", role=role, operator=operator)
                return str(key)

            self.keys[wanted] = self.run(create())
        return self.keys[wanted]

    def session_for(self, role: Role, *, tenant_id: str | None = None) -> str:
        """A UI session token of a real key of ``role``, signed in through the form."""
        with httpx.Client(base_url=self.url) as client:
            sign_in(client, self.key_for(role, tenant_id=tenant_id))
            return str(client.cookies["roost_ui"])


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


@pytest.fixture(scope="module")
def seeded(ui_server: UiServer) -> dict[str, Any]:
    """What the prompts and evals pages show: two versions of a prompt (the second with
    HTML in it), a dataset with HTML in an item, a finished evaluation over it, and an
    experiment with runs and feedback."""
    ui = ui_server
    ui.run(_register(ui, "function:calc-b"))
    with ui.api() as api:
        for template in ("Hello {{ name }}, be brief.", f"Hi {{{{ name }}}} {XSS}"):
            made = api.post("/v1/prompts", json={
                "name": "greet", "template": template, "labels": ["production"],
                "description": "greets"})  # fmt: skip
            assert made.status_code == 201, made.text
        api.post("/v1/prompts/greet/labels", json={"label": "production", "version": 1})
        items = [{"input": "2+40", "expected": "42"}, {"input": f"say {XSS}", "expected": "43"}]
        made = api.post("/v1/datasets", json={"name": "sums", "items": items})
        assert made.status_code == 201, made.text
        done = api.post("/v1/evals", json={
            "dataset": "sums", "target": {"agent": "calc"}, "scorer": {"type": "regex"},
            "mode": "wait", "timeout_s": 60})  # fmt: skip
        assert done.status_code == 200, done.text
        spec = {"name": "split", "model": "function:calc", "tools": ["add"]}
        assert api.post("/v1/agents", json={"spec": spec}).status_code == 201
        made = api.post("/v1/experiments", json={
            "name": "calc-ab", "agent": "split",
            "variants": [{"name": "a", "model": "function:calc"},
                         {"name": "b", "model": "function:calc-b"}]})  # fmt: skip
        assert made.status_code == 201, made.text
        # Threads fall to variants by a hash of their random ids: run new threads until each
        # variant has two runs (4 fixed threads all landed on one variant 1 time in 8).
        for n in range(40):
            thread = api.post("/v1/threads", json={}).json()["id"]
            run = api.post(f"/v1/threads/{thread}/runs",
                           json={"agent": "split", "input": f"2+{n}", "mode": "wait"}).json()  # fmt: skip
            assert run["status"] == "succeeded", run
            api.post(f"/v1/runs/{run['id']}/feedback", json={"score": n % 2})
            report = api.get("/v1/experiments/calc-ab").json()["variants_report"]
            if len(report) == 2 and all(v["runs"] >= 2 for v in report):
                break
        else:
            raise AssertionError(f"40 threads did not reach both variants twice: {report}")
    return {"eval_id": done.json()["id"]}


async def _register(ui: UiServer, model_id: str) -> None:
    ui.app.state.llm.router.registry.register(FunctionModel(answer_after_tools, model_id))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
