"""Where a command on stored data acts: this machine's store, or a server over HTTP.

Precedence, highest first:

1. ``--url URL``, then the ``ROOST_URL`` variable: the command goes to that server over
   HTTP and acts for the tenant of the API key (``--api-key``, ``ROOST_KEY``,
   ``ROOST_API_KEY``); ``--tenant`` is refused there, since the key decides.
2. Otherwise the command opens the Roost home's store through the kernel
   (:meth:`roost.platform.Roost.open_for_command`: settings, ``ROOST_HOME``,
   ``--config``) and calls its services directly. No server has to run, and a running
   one sees the result at once (same database).

Commands on what lives only in a server process (``cache``, ``models swap``,
``agents run``) always use HTTP: ``--url`` / ``ROOST_URL``, else ``server.host:port``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from roost.cli.common import fail, settings_from, with_kernel
from roost.cli.server_client import check, server_client, unreachable
from roost.errors import NotFound
from roost.security import DEFAULT_TENANT

if TYPE_CHECKING:
    import httpx

    from roost.platform import Roost

T = TypeVar("T")
TenantOption = Annotated[
    str | None,
    typer.Option("--tenant", "-t", help="Tenant name on this machine's store (default: default)"),
]


class Api:
    """A server's HTTP API as commands use it: JSON in, JSON out, errors printed (exit 1)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        return self._call("GET", path, params=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, json=body if body is not None else {})

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return check(self.client.request(method, path, **kwargs))
        except httpx.HTTPError as exc:
            raise unreachable(self.client, exc) from exc


def act(
    ctx: typer.Context,
    url: str | None,
    api_key: str | None,
    *,
    local: Callable[[Roost], Awaitable[T]],
    remote: Callable[[Api], T] | None,
    tenant: str | None = None,
) -> T:
    """Run ``local`` on this machine's kernel, or ``remote`` on the server at ``url``."""
    settings = settings_from(ctx)
    if url is None:
        return with_kernel(settings, local)
    command = ctx.command_path.removeprefix(ctx.find_root().info_name or "").strip()
    if remote is None:
        fail(f"`{command}` works on this machine's store only; run it without --url/ROOST_URL",
             code=2)  # fmt: skip
    if tenant is not None:
        fail("--tenant selects a tenant of this machine's store; over HTTP the API key's"
             " tenant is used", code=2)  # fmt: skip
    with server_client(settings, url, api_key) as client:
        return remote(Api(client))


async def tenant_id(kernel: Roost, name: str | None) -> str:
    """The id of tenant ``name`` (default: the default tenant) in the kernel's store."""
    chosen = name or DEFAULT_TENANT
    found = await kernel.platform.tenants.find_by_name(chosen)
    if found is None:
        raise NotFound(
            f"tenant {chosen!r} not found (create it with: roost tenants create {chosen})"
        )
    return found.id
