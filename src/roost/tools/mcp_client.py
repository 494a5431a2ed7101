"""External MCP servers as a Roost toolset, through the official ``mcp`` SDK's ``Client``.

Each server's tools appear as ``<server>_<tool>`` with the server's JSON schema; their
risk comes from the settings or, failing that, from the tool's MCP annotations
(read-only → read, non-destructive → write, open-world → network, otherwise
destructive, as the MCP spec's defaults say). The connection lives in one background
task that owns the SDK's context managers; when it drops, the next use reconnects, and a
call that failed on a dead connection is retried once when the tool is read-only or
idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import CONNECTION_CLOSED

from roost.config import McpServerSettings
from roost.observe.logging import get_logger
from roost.tools.base import RiskLevel, Tool, ToolFailure
from roost.tools.context import ToolContext

log = get_logger("roost.tools.mcp")
ClientFactory = Callable[[], Client]
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")
RECONNECT_BACKOFF_S = 15.0


class McpUnavailable(ToolFailure):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="mcp_unavailable")


def risk_from_annotations(annotations: types.ToolAnnotations | None) -> RiskLevel:
    """The MCP spec's hint defaults: not read-only, destructive, open-world."""
    if annotations is None:
        return RiskLevel.DESTRUCTIVE
    if annotations.read_only_hint:
        return RiskLevel.READ
    if annotations.destructive_hint is False:
        return RiskLevel.NETWORK if annotations.open_world_hint else RiskLevel.WRITE
    return RiskLevel.DESTRUCTIVE


class McpToolset:
    """One MCP server's tools, resources and prompts. Use as ``async with``."""

    def __init__(self, name: str, connect: ClientFactory, *, risk: RiskLevel | None = None) -> None:
        self.name = name
        self._connect = connect
        self.risk = risk
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._tools: list[types.Tool] = []
        self._lock = asyncio.Lock()
        self.connections = 0  # how many times a connection was opened (reconnects show here)
        self._retry_at = 0.0

    @classmethod
    def stdio(
        cls, name: str, argv: list[str], *, env: dict[str, str] | None = None, **kw: Any
    ) -> McpToolset:
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
        return cls(name, lambda: Client(params, mode="legacy"), **kw)

    @classmethod
    def http(
        cls,
        name: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        **kw: Any,
    ) -> McpToolset:
        def connect() -> Client:
            http_client = httpx2.AsyncClient(headers=headers or {}, transport=transport)
            return Client(streamable_http_client(url, http_client=http_client))

        return cls(name, connect, **kw)

    @classmethod
    def from_settings(cls, settings: McpServerSettings) -> McpToolset:
        risk = RiskLevel(settings.risk) if settings.risk else None
        if settings.command:
            return cls.stdio(settings.name, settings.command, env=settings.env or None, risk=risk)
        if settings.url:
            return cls.http(settings.name, settings.url, headers=settings.headers, risk=risk)
        raise ValueError(f"MCP server {settings.name!r} needs a command or a url")

    async def __aenter__(self) -> McpToolset:
        await self._ensure_connected()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        self._task = None
        self._client = None

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._task is not None and not self._task.done()

    async def _ensure_connected(self) -> Client:
        async with self._lock:
            if self.is_connected:
                assert self._client is not None
                return self._client
            if time.monotonic() < self._retry_at:
                raise McpUnavailable(f"MCP server {self.name!r} is unreachable; retrying later")
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._closing = asyncio.Event()
            self._task = asyncio.create_task(self._hold(ready), name=f"mcp:{self.name}")
            try:
                client = await ready
            except Exception as exc:
                # Back off so that every listing does not relaunch a broken server.
                self._retry_at = time.monotonic() + RECONNECT_BACKOFF_S
                raise McpUnavailable(f"cannot connect to MCP server {self.name!r}: {exc}") from exc
            self._client = client
            self.connections += 1
            self._tools = await self._fetch_tools(client)
            return client

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        """Own the SDK client's context in one task, as anyio requires, until closed."""
        try:
            async with self._connect() as client:
                ready.set_result(client)
                await self._closing.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            else:
                log.warning("MCP connection ended", server=self.name, error=repr(exc))
        finally:
            self._client = None

    @staticmethod
    async def _fetch_tools(client: Client) -> list[types.Tool]:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(100):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def refresh(self) -> None:
        """List the server's tools again (after a ``tools/list_changed``, say)."""
        client = await self._ensure_connected()
        self._tools = await self._fetch_tools(client)

    async def list_tools(self) -> list[Tool]:
        """The server's tools; while it is unreachable, the last listing (or none), not an error.

        One MCP server being down must not hide every other tool from agents and clients.
        """
        try:
            await self._ensure_connected()
        except McpUnavailable as exc:
            log.warning("MCP server unreachable; listing its last known tools", server=self.name,
                        error=exc.message)  # fmt: skip
        return [self._as_tool(remote) for remote in self._tools]

    def _as_tool(self, remote: types.Tool) -> Tool:
        local_name = _UNSAFE_NAME.sub("_", f"{self.name}_{remote.name}")[:64]
        annotations = remote.annotations
        retry_safe = bool(
            annotations and (annotations.read_only_hint or annotations.idempotent_hint)
        )

        async def handler(ctx: ToolContext, arguments: dict[str, Any]) -> Any:
            return await self.call(remote.name, arguments, retry_safe=retry_safe)

        return Tool(
            name=local_name,
            description=remote.description or remote.title or remote.name,
            input_schema=dict(remote.input_schema),
            handler=handler,
            risk=self.risk or risk_from_annotations(annotations),
            output_schema=dict(remote.output_schema) if remote.output_schema else None,
            idempotent=retry_safe,
            tags=frozenset({"mcp", f"mcp:{self.name}"}),
        )

    async def call(self, tool: str, arguments: dict[str, Any], *, retry_safe: bool) -> Any:
        """Call a tool on the server; its error results become :class:`ToolFailure`."""
        result = await self._with_reconnect(
            lambda client: client.call_tool(tool, arguments), retry=retry_safe
        )
        return _tool_output(self.name, tool, result)

    async def list_resources(self) -> list[dict[str, Any]]:
        result = await self._with_reconnect(lambda c: c.list_resources(), retry=True)
        return [r.model_dump(mode="json", exclude_none=True) for r in result.resources]

    async def read_resource(self, uri: str) -> list[dict[str, Any]]:
        result = await self._with_reconnect(lambda c: c.read_resource(uri), retry=True)
        return [c.model_dump(mode="json", exclude_none=True) for c in result.contents]

    async def list_prompts(self) -> list[dict[str, Any]]:
        result = await self._with_reconnect(lambda c: c.list_prompts(), retry=True)
        return [p.model_dump(mode="json", exclude_none=True) for p in result.prompts]

    async def get_prompt(self, name: str, arguments: dict[str, str] | None = None) -> Any:
        result = await self._with_reconnect(lambda c: c.get_prompt(name, arguments), retry=True)
        return result.model_dump(mode="json", exclude_none=True)

    async def _with_reconnect(self, operation: Callable[[Client], Any], *, retry: bool) -> Any:
        client = await self._ensure_connected()
        try:
            return await operation(client)
        except MCPError as exc:
            if exc.code != CONNECTION_CLOSED:  # the server answered; the connection is fine
                raise ToolFailure(f"{self.name}: {exc.message}", type="mcp_error") from exc
            failure: Exception = exc
        except Exception as exc:  # transport failures come as many types (anyio, OS, HTTP)
            failure = exc
        log.warning("MCP call failed; reconnecting", server=self.name, error=repr(failure))
        await self.close()
        client = await self._ensure_connected()
        if not retry:
            raise McpUnavailable(
                f"connection to MCP server {self.name!r} was lost during the call and has been"
                " re-established; the call was not retried because the tool is not idempotent"
            ) from failure
        return await operation(client)


def _tool_output(server: str, tool: str, result: types.CallToolResult) -> Any:
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    if result.is_error:
        message = "\n".join(texts) or "the tool reported an error"
        raise ToolFailure(f"{server}/{tool}: {message}", type="mcp_tool_error")
    if result.structured_content is not None:
        return result.structured_content
    if len(texts) == len(result.content):
        return "\n".join(texts)
    return [block.model_dump(mode="json", exclude_none=True) for block in result.content]
