"""Tool-layer fixtures: a workspace, a sandbox, a context, and a platform-backed service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.config import Settings
from roost.platform import Platform
from roost.tools.context import ToolContext
from roost.tools.netguard import NetworkPolicy
from roost.tools.paths import Workspace
from roost.tools.permissions import Caller
from roost.tools.sandbox import Sandbox, SandboxPolicy
from roost.tools.service import ToolService


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxPolicy(timeout_s=20))


@pytest.fixture
def ctx(workspace: Workspace, sandbox: Sandbox) -> ToolContext:
    return ToolContext("ten_test", "key:test", workspace, sandbox, NetworkPolicy())


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    opened = await Platform.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def service(platform: Platform) -> AsyncIterator[ToolService]:
    opened = await ToolService.open(platform)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def caller(platform: Platform) -> Caller:
    tenant = await platform.tenants.find_by_name("default")
    assert tenant is not None
    return Caller(tenant_id=tenant.id, actor="key:test")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: compare before and after a hostile call."""
    return {
        p.relative_to(root).as_posix(): (
            p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        )
        for p in sorted(root.rglob("*"))
    }


# The server's app fixtures (make_app, auth), reused for the HTTP and MCP endpoint tests.
from tests.server.conftest import auth, make_app  # noqa: E402, F401
