"""``roost models``: list and pull named models locally; swap the one a server serves."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from roost.cli.common import console, err_console, settings_from
from roost.cli.server_client import ApiKeyOption, UrlOption, server_client, unreachable
from roost.errors import RoostError

if TYPE_CHECKING:
    import httpx

    from roost.engine.registry import ModelEntry, ModelRegistry

app = typer.Typer(help="Named models: list, pull (convert or download), swap on a server.")


def _registry(ctx: typer.Context) -> ModelRegistry:
    # Imported here: the engine loads torch, which `swap` (an HTTP call) and --help skip.
    from roost.engine.registry import ModelRegistry

    return ModelRegistry.from_settings(settings_from(ctx))


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Built-in, configured ([engine.models]) and on-disk models; no server needed."""
    entries = _registry(ctx).entries()
    if as_json:
        rows = [dataclasses.asdict(entry) | {"path": _path(entry)} for entry in entries]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(caption="* loaded at start (engine.model)")
    for column in ("name", "kind", "local", "size"):
        table.add_column(column, no_wrap=True)
    table.add_column("note")
    table.add_column("source", overflow="fold")
    for entry in entries:
        name = f"* {entry.name}" if entry.is_default else entry.name
        local = "yes" if entry.is_available else "no"
        size = _size(entry.size_bytes) if entry.size_bytes else "-"
        table.add_row(name, entry.kind, local, size, entry.note, entry.source)
    console.print(table, markup=False, highlight=False)


@app.command()
def pull(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name from `roost models list`")],
    endpoint: Annotated[
        str | None, typer.Option(help="Hugging Face endpoint or mirror (default: HF_ENDPOINT)")
    ] = None,
) -> None:
    """Make NAME loadable offline: convert a GGUF file, or download a Hugging Face repo."""
    registry = _registry(ctx)
    registry.hf_endpoint = endpoint
    try:
        entry = registry.pull(name)
    except RoostError as exc:
        _fail(exc.message)
    console.print(f"{entry.name}: {entry.note} ({_size(entry.size_bytes)} at {entry.path})")


@app.command()
def swap(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name from `roost models list`")],
    drain_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds running requests may finish (engine.swap_drain_timeout_s)"),
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Make the running server serve NAME: load, drain, unload the old model, publish."""
    import httpx

    client = server_client(settings_from(ctx), url, api_key)
    body = {"model": name, "drain_timeout_s": drain_timeout, "stream": True}
    try:
        with client, client.stream("POST", "/admin/models/swap", json=body) as response:
            if response.status_code >= 400:
                response.read()
                _fail(_detail(response.json()))
            result = _follow(response)
    except httpx.HTTPError as exc:
        raise unreachable(client, exc) from exc
    if result["status"] == "unchanged":
        console.print(f"{name} is already loaded; nothing to do")
        return
    console.print(
        f"now serving {result['model']} (was {result['previous']}) "
        f"after {result['duration_s']:.1f}s",
        highlight=False,
    )


def _follow(response: httpx.Response) -> dict[str, Any]:
    """Show each phase as it arrives; the final ``done`` event's data, or exit 1 on ``error``."""
    event = ""
    with console.status("swapping…") as status:
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
                continue
            if not line.startswith("data: "):
                continue
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            if event == "phase":
                status.update(f"{data['phase']}…")
                console.print(_phase_line(data), highlight=False)
            elif event == "done":
                return data
            elif event == "error":
                _fail(_detail(data))
    _fail("the server closed the stream before the swap finished")


def _phase_line(phase: dict[str, Any]) -> str:
    facts = {k: v for k, v in phase.items() if k not in ("phase", "elapsed_s")}
    extra = " ".join(f"{key}={value}" for key, value in facts.items())
    return f"  {phase['elapsed_s']:7.2f}s  {phase['phase']:<10} {extra}".rstrip()


def _detail(problem: dict[str, Any]) -> str:
    return str(problem.get("detail") or problem)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def _path(entry: ModelEntry) -> str | None:
    return str(entry.path) if entry.path is not None else None
