"""HTTP to a Roost server, for what lives in a server process (its KV caches, a model
swap, agent runs) and for any command pointed at a server with ``--url`` / ``ROOST_URL``.

The API key is ``--api-key``, else ``ROOST_KEY`` (what README's curl examples export),
else ``ROOST_API_KEY`` / ``auth.bootstrap_key`` (the key a deployment seeds).

httpx is imported by the functions that talk to a server: it is half of what every
``roost`` invocation would import otherwise.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from roost.cli.common import err_console, print_problems

if TYPE_CHECKING:
    import httpx

    from roost.config import Settings

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="ROOST_URL", help="Server URL, or ROOST_URL (default: server.host/port)"
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=["ROOST_KEY", "ROOST_API_KEY"],
        help="API key for the server, or ROOST_KEY / ROOST_API_KEY",
    ),
]


def server_client(
    settings: Settings, url: str | None, api_key: str | None, *, read_timeout: float = 900.0
) -> httpx.Client:
    """A client for the server in ``settings`` (or ``url``), authenticated like the caller."""
    base = url or f"http://{settings.server.host}:{settings.server.port}"
    import httpx

    key = api_key or os.environ.get("ROOST_AUTH__BOOTSTRAP_KEY")
    if key is None and settings.auth.bootstrap_key is not None:
        key = settings.auth.bootstrap_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(
        base_url=base, headers=headers, timeout=httpx.Timeout(30.0, read=read_timeout)
    )


def check(response: httpx.Response) -> Any:
    """The JSON body of a successful response; otherwise print the server's error (every
    one of them, when it lists several) and exit 1."""
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail = problem.get("detail") or problem.get("error", {}).get("message")
            errors = problem.get("errors") or []
        except ValueError:
            detail, errors = response.text, []
        print_problems(str(detail), errors)
        raise typer.Exit(1)
    return response.json() if response.content else None


def unreachable(client: httpx.Client, exc: httpx.HTTPError) -> typer.Exit:
    """Report that the server could not be reached; raise the returned Exit."""
    err_console.print(
        f"[bold red]error:[/] cannot reach {client.base_url}: {escape(str(exc))}", highlight=False
    )
    return typer.Exit(1)
