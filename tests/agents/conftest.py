"""Agent fixtures: a platform, the tool layer with a few test tools, scripted models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from roost.agents.runtime import AgentRuntime, ExecutorToolRunner
from roost.config import Settings
from roost.llm.base import Model
from roost.llm.providers import ProviderRegistry
from roost.llm.router import Router
from roost.llm.service import LLMService
from roost.platform import Platform
from roost.tools.base import RiskLevel, tool_from_function
from roost.tools.context import ToolContext
from roost.tools.service import ToolService
from roost.tools.toolsets import StaticToolset


@dataclass
class ToolLog:
    """What the test tools were called with, and a barrier proving calls overlap."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    both_started: asyncio.Event = field(default_factory=asyncio.Event)
    started: int = 0


def make_test_tools(log: ToolLog) -> StaticToolset:
    async def add(ctx: ToolContext, a: int, b: int) -> int:
        """Add two integers."""
        log.calls.append(("add", {"a": a, "b": b}))
        return a + b

    async def lookup(ctx: ToolContext, key: str) -> str:
        """Look a word up in a tiny dictionary."""
        log.calls.append(("lookup", {"key": key}))
        return {"roost": "a place where birds rest"}.get(key, "unknown")

    async def rendezvous(ctx: ToolContext, name: str) -> str:
        """Wait until two calls of this tool are running at once."""
        log.started += 1
        if log.started >= 2:
            log.both_started.set()
        await asyncio.wait_for(log.both_started.wait(), 10)
        log.calls.append(("rendezvous", {"name": name}))
        return f"met {name}"

    async def drop_table(ctx: ToolContext, table: str) -> str:
        """Delete a table (destructive: needs approval)."""
        log.calls.append(("drop_table", {"table": table}))
        return f"dropped {table}"

    return StaticToolset(
        [
            tool_from_function(add),
            tool_from_function(lookup),
            tool_from_function(rendezvous),
            tool_from_function(drop_table, risk=RiskLevel.DESTRUCTIVE),
        ]
    )


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    opened = await Platform.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def tenant_id(platform: Platform) -> str:
    tenant = await platform.tenants.find_by_name("default")
    assert tenant is not None
    return tenant.id


@pytest.fixture
def tool_log() -> ToolLog:
    return ToolLog()


@pytest.fixture
async def tools(
    platform: Platform, tenant_id: str, tool_log: ToolLog
) -> AsyncIterator[ToolService]:
    service = await ToolService.open(platform, connect_mcp=False)
    service.registry.add_for_tenant(tenant_id, make_test_tools(tool_log))
    try:
        yield service
    finally:
        await service.close()


def llm_with(*models: Model) -> LLMService:
    registry = ProviderRegistry(env={})
    for model in models:
        registry.register(model)
    return LLMService(Router(registry))


RuntimeFactory = Callable[..., AgentRuntime]


@pytest.fixture
def make_runtime(tools: ToolService) -> RuntimeFactory:
    def make(*models: Model) -> AgentRuntime:
        return AgentRuntime(llm_with(*models), ExecutorToolRunner(tools))

    return make


# Shared fixtures: the real bundled model (session engine) and the server app factory.
from tests.api.conftest import engine  # noqa: E402, F401
from tests.server.conftest import auth, make_app  # noqa: E402, F401
