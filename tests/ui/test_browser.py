"""The web UI in a real browser: Debian's chromium, headless, driven by Playwright.

Each test also fails on any console error or uncaught script error of its pages, and
leaves a screenshot of what it saw under test-artifacts/ui/ (docs/ui.md shows copies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from roost.security.principal import Role
from tests.ui.conftest import ARTIFACTS, BOOTSTRAP_KEY, TARGET_XSS, XSS, UiServer

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class Console:
    def __init__(self) -> None:
        self.errors: list[str] = []


@pytest.fixture
def console() -> Console:
    return Console()


def open_page(
    chromium: Browser, ui: UiServer, console: Console, viewport: dict[str, int] = DESKTOP
) -> Page:
    context = chromium.new_context(viewport=viewport, base_url=ui.url)  # type: ignore[arg-type]
    page = context.new_page()
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.errors.append(str(e)))
    return page


@pytest.fixture
def page(chromium: Browser, ui_server: UiServer, console: Console) -> Iterator[Page]:
    opened = open_page(chromium, ui_server, console)
    yield opened
    opened.context.close()
    assert console.errors == [], console.errors


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, key: str = BOOTSTRAP_KEY, *, screenshot: bool = False) -> None:
    page.goto("/ui/runs")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("API key").fill(key)
    if screenshot:
        shot(page, "login")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/runs$"))


def as_role(page: Page, ui: UiServer, role: Role, *, operator: bool = False) -> None:
    """Signed in through the form with a real API key of ``role``."""
    page.goto("/ui/login")
    page.get_by_label("API key").fill(ui.key_for(role, operator=operator))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/runs$"))


def csrf_on(page: Page) -> str:
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


def test_sign_in_start_a_run_and_watch_it_finish_live(page: Page, ui_server: UiServer) -> None:
    sign_in(page, screenshot=True)
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="gated").click()
    page.get_by_label("Input").fill("wait for the gate")
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/ui/runs/run_"))
    status = page.locator("#run-status")
    expect(status).to_have_text(re.compile("queued|running"))
    shot(page, "run-live")
    url = page.url
    ui_server.gate.set()  # the model answers now; the open page must follow by itself
    expect(status).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("#run-output")).to_contain_text("the gate opened")
    assert page.url == url
    expect(page.locator(".timeline")).to_contain_text("run succeeded")
    shot(page, "run")


def test_approve_a_pending_tool_call_and_the_run_resumes(page: Page, ui_server: UiServer) -> None:
    as_role(page, ui_server, Role.OWNER)
    page.goto("/ui/agents/dropper")
    page.get_by_label("Input").fill("drop the users table")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#run-status")).to_have_text("interrupted", timeout=15_000)
    page.get_by_role("link", name="Pending approvals").click()
    card = page.locator("article.approval").filter(has_text="drop_table").first
    expect(card).to_contain_text('"table": "users"')
    expect(card).to_contain_text("risk: destructive")
    shot(page, "approvals")
    card.get_by_label("Reason (optional)").fill("checked with the DBA")
    card.get_by_role("button", name="Approve").click()
    expect(page).to_have_url(re.compile(r"/ui/runs/run_"))
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("#run-output")).to_contain_text("dropped users")
    assert ("drop_table", {"table": "users"}) in ui_server.tools.calls


def test_a_viewer_sees_no_act_buttons_and_is_refused_posting(
    page: Page, ui_server: UiServer, seeded: dict[str, Any]
) -> None:
    with ui_server.api() as api:
        thread = api.post("/v1/threads", json={}).json()["id"]
        run = api.post(
            f"/v1/threads/{thread}/runs", json={"agent": "dropper", "input": "x", "mode": "wait"}
        ).json()
    approval_id = run["interrupts"][0]["value"]["approvals"][0]["approval_id"]
    as_role(page, ui_server, Role.VIEWER)
    expect(page.locator("header .who")).to_contain_text("viewer")
    page.goto("/ui/approvals")
    expect(page.get_by_role("note")).to_contain_text("viewer")
    expect(page.get_by_text(run["id"]).first).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    page.goto(f"/ui/runs/{run['id']}")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    shot(page, "viewer-run")
    page.goto("/ui/agents/calc")
    expect(page.get_by_role("button", name="Start run")).to_have_count(0)
    page.goto("/ui/prompts/greet")
    expect(page.get_by_role("button", name="Move label")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit")).to_have_count(0)
    # Posting anyway, with the session's own CSRF token: refused by the permission table.
    csrf = csrf_on(page)
    for path, form in (
        (f"/ui/approvals/{approval_id}", {"decision": "approve"}),
        (f"/ui/runs/{run['id']}/cancel", {}),
        ("/ui/agents/calc/runs", {"input": "x"}),
        ("/ui/prompts/greet/labels", {"label": "production", "version": "2"}),
    ):
        refused = page.request.post(f"{ui_server.url}{path}", form={"csrf": csrf, **form})
        assert refused.status == 403, path
    with ui_server.api() as api:
        assert api.get(f"/v1/runs/{run['id']}").json()["status"] == "interrupted"
        api.post(f"/v1/runs/{run['id']}/cancel")


def test_an_operator_sees_the_caches_page_and_an_ordinary_owner_does_not(
    page: Page, ui_server: UiServer
) -> None:
    as_role(page, ui_server, Role.OWNER, operator=True)
    page.get_by_role("link", name="KV caches").click()
    expect(page.get_by_role("heading", name="KV caches", exact=True)).to_be_visible()
    page.context.clear_cookies()
    sign_in(page, ui_server.other_key)
    expect(page.get_by_role("link", name="KV caches")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit")).to_be_visible()  # its own tenant's log
    assert page.request.get(f"{ui_server.url}/ui/caches").status == 403


def test_prompts_evaluations_and_experiments(
    page: Page, ui_server: UiServer, seeded: dict[str, Any]
) -> None:
    as_role(page, ui_server, Role.OWNER)
    page.get_by_role("link", name="Prompts").click()
    shot(page, "prompts")
    page.get_by_role("link", name="greet").click()
    page.get_by_label("Compare version").select_option("1")
    page.get_by_label("with version").select_option("2")
    page.get_by_role("button", name="Show diff").click()
    expect(page.locator("#diff .add")).to_contain_text(["+Hi {{ name }} <script>"])
    shot(page, "prompt")
    # Move "production" from version 1 to version 2; the table follows.
    expect(page.locator("#version-1")).to_contain_text("production")
    page.get_by_label("Label", exact=True).fill("production")
    page.get_by_label("To version").select_option("2")
    page.get_by_role("button", name="Move label").click()
    expect(page.locator("#version-2")).to_contain_text("production")
    expect(page.locator("#version-1")).not_to_contain_text("production")
    page.get_by_role("link", name="Evaluations").click()
    shot(page, "evals")
    page.get_by_role("link", name=seeded["eval_id"]).click()
    expect(page.locator("#eval-status")).to_have_text("succeeded")
    expect(page.locator("#eval-results tr.result")).to_have_count(2)
    expect(page.locator("#eval-summary")).to_contain_text("1 of 2")
    shot(page, "eval")
    page.get_by_role("link", name="sums v1").first.click()
    expect(page.locator("#dataset-items tr.item")).to_have_count(2)
    page.get_by_role("link", name="Experiments").click()
    shot(page, "experiments")
    page.get_by_role("link", name="calc-ab").click()
    expect(page.locator("#variants-report tr.variant")).to_have_count(2)
    expect(page.locator("#significance")).to_contain_text("fisher_exact")
    shot(page, "experiment")


def test_audit_log_filters_and_verifies_the_chain(page: Page, ui_server: UiServer) -> None:
    as_role(page, ui_server, Role.OWNER)
    page.get_by_role("link", name="Agents").click()  # something to audit: a started run
    page.get_by_role("link", name="calc").click()
    page.get_by_label("Input").fill("audit me")
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/ui/runs/run_"))
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Action (prefix*)").fill("http:*")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-events tr.event").first).to_be_visible()
    page.goto(f"{page.url}&limit=2")  # pages of two: the fixture made three agents
    expect(page.locator("#audit-events tr.event")).to_have_count(2)
    expect(page.get_by_role("link", name="Older records")).to_be_visible()
    shot(page, "audit")
    # What was done through the UI is in the log too, under its signed-in key.
    page.get_by_label("Action (prefix*)").fill("http:POST /ui/*")
    page.get_by_role("button", name="Filter").click()
    started = page.locator("#audit-events tr.event").first
    expect(started).to_contain_text("http:POST /ui/agents/{name}/runs")
    expect(started).to_contain_text("name=calc")
    page.get_by_role("link", name="Verify the hash chain").click()
    expect(page.locator("#verify-result")).to_contain_text("The chain adds up")
    shot(page, "audit-verify")


def test_search_memory_and_delete_after_confirming(page: Page, ui_server: UiServer) -> None:
    with ui_server.api() as api:
        for text in ("the zebra likes oranges", "the office opens at nine"):
            made = api.post("/v1/memory/agents/calc/memories", json={"text": text})
            assert made.status_code == 201
    as_role(page, ui_server, Role.OWNER)
    page.goto("/ui/runs")
    page.get_by_role("link", name="Memory").click()
    page.get_by_label("Agent").fill("calc")
    page.get_by_label("Search").fill("zebra oranges")
    page.get_by_role("button", name="Show").click()
    first = page.locator("li.memory").first
    expect(first).to_contain_text("the zebra likes oranges")
    shot(page, "memory")
    first.get_by_role("link", name="Delete this memory").click()
    expect(page.get_by_role("heading", name="Delete memory")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/ui/memory\?agent=calc$"))
    expect(page.locator("li.memory")).not_to_contain_text(["the zebra likes oranges"])
    expect(page.get_by_text("the office opens at nine")).to_be_visible()


def test_a_trace_shows_as_a_waterfall(page: Page, ui_server: UiServer) -> None:
    with ui_server.api() as api:
        thread = api.post("/v1/threads", json={}).json()["id"]
        run = api.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "2+40", "mode": "wait"}
        ).json()
    as_role(page, ui_server, Role.OWNER)
    page.goto(f"/ui/traces?run_id={run['id']}")
    shot(page, "traces")
    page.locator("table a").first.click()
    spans = page.locator("ol.waterfall li.span")
    expect(spans.first).to_be_visible()
    assert spans.count() >= 3
    expect(page.locator("ol.waterfall svg.bar rect").first).to_be_attached()
    shot(page, "trace")
    spans.first.locator("summary").click()
    expect(spans.first.locator("pre.content").first).to_be_visible()


def test_forms_need_csrf_and_an_expired_session_goes_to_sign_in(
    page: Page, ui_server: UiServer
) -> None:
    sign_in(page)
    refused = page.request.post(f"{ui_server.url}/ui/agents/calc/runs", form={"input": "x"})
    assert refused.status == 403
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "roost_ui")
    ui_server.run(ui_server.app.state.web_sessions.expire_now(token))
    page.goto("/ui/approvals")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/approvals$"))
    expect(page.get_by_label("API key")).to_be_focused()


def test_injected_html_stays_text(page: Page, ui_server: UiServer, seeded: dict[str, Any]) -> None:
    with ui_server.api() as api:
        thread = api.post("/v1/threads", json={}).json()["id"]
        run = api.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": XSS, "mode": "wait"}
        ).json()
        api.post("/v1/memory/agents/calc/memories", json={"text": f"xss {XSS}"})
        # An audit target: a path parameter (no slash) that the API refused but recorded.
        api.post(f"/v1/prompts/{quote(TARGET_XSS, safe='')}/labels",
                 json={"label": "production", "version": 1})  # fmt: skip
    as_role(page, ui_server, Role.OWNER)
    for path, shown in (
        (f"/ui/runs/{run['id']}", XSS), ("/ui/agents", XSS), ("/ui/memory?agent=calc", XSS),
        ("/ui/prompts/greet?a=1&b=2", XSS), ("/ui/datasets/sums", XSS),
        (f"/ui/evals/{seeded['eval_id']}", XSS),
        ("/ui/audit?action=http:POST%20/v1/prompts/{name}/labels", TARGET_XSS),
    ):  # fmt: skip
        page.goto(path)
        expect(page.locator("main")).to_contain_text(shown)
        assert page.evaluate("window.__pwned") is None, path


def _unlabelled(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
            .map(el => el.outerHTML)"""
    )
    return found


PAGES = (
    ("runs", "/ui/runs"), ("agents", "/ui/agents"), ("agent", "/ui/agents/calc?a=1&b=1"),
    ("knowledge", "/ui/knowledge?collection=handbook&q=holidays"), ("usage", "/ui/usage"),
    ("playground", "/ui/playground"), ("caches", "/ui/caches"),
    ("approvals-all", "/ui/approvals?status=all"), ("prompts", "/ui/prompts"),
    ("evals", "/ui/evals"), ("experiments", "/ui/experiments"),
    ("audit-all", "/ui/audit?limit=5"),
)  # fmt: skip


def test_every_page_works_by_keyboard_at_desktop_and_phone_width(
    chromium: Browser, page: Page, ui_server: UiServer, console: Console
) -> None:
    with ui_server.api() as api:
        made = api.post("/v1/knowledge/collections", json={"name": "handbook"})
        assert made.status_code == 201
        doc = {"uri": "handbook/leave.md", "text": "Holidays: 25 days a year.", "title": "Leave"}
        assert api.post("/v1/knowledge/collections/handbook/documents", json=doc).is_success
    as_role(page, ui_server, Role.OWNER, operator=True)
    for name, path in PAGES:
        page.goto(path)
        assert _unlabelled(page) == [], name
        shot(page, name)
    # An operator's key sees the platform pages.
    expect(page.get_by_role("link", name="KV caches")).to_be_visible()
    page.goto("/ui/knowledge?collection=handbook&q=holidays")
    expect(page.locator("ol.hits")).to_contain_text("25 days")
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    phone = open_page(chromium, ui_server, console, PHONE)
    phone.context.add_cookies(page.context.cookies())
    for name, path in (("runs", "/ui/runs"), ("approvals", "/ui/approvals?status=all")):
        phone.goto(path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (name, width)
        shot(phone, f"phone-{name}")
    phone.context.close()
