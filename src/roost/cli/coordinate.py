"""``roost agents coordinate "<task>"``: a planner splits the task among agents, each
subtask runs on its agent, a synthesizer writes the answer — a durable coordinator run
on a running server (``POST /v1/coordinator/runs``), its progress shown as it happens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, err_console, settings_from
from roost.cli.server_client import ApiKeyOption, UrlOption, check, server_client, unreachable

if TYPE_CHECKING:
    import httpx


def coordinate(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="What the agents should do together")],
    agent: Annotated[
        list[str] | None, typer.Option("--agent", "-a", help="A worker agent (default: all)")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Planner and synthesizer model (default: first agent's)")
    ] = None,
    plan: Annotated[
        Path | None, typer.Option(help="A ready plan (JSON file): skip the planner")
    ] = None,
    max_revisions: Annotated[int, typer.Option(min=0, max=5, help="Revision rounds")] = 1,
    thread: Annotated[str | None, typer.Option(help="Run on this thread")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the settled run as JSON")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Plan a task over several agents, run the subtasks, synthesize the answer."""
    import httpx

    body: dict[str, Any] = {"task": task, "mode": "stream", "max_revisions": max_revisions}
    if agent:
        body["agents"] = agent
    if model:
        body["model"] = model
    if thread:
        body["thread_id"] = thread
    if plan is not None:
        try:
            body["plan"] = json.loads(plan.read_text())
        except (OSError, ValueError) as exc:
            err_console.print(f"[bold red]error:[/] cannot read the plan {plan}: {exc}")
            raise typer.Exit(2) from None
    client = server_client(settings_from(ctx), url, api_key)
    try:
        with client, client.stream("POST", "/v1/coordinator/runs", json=body) as response:
            if response.status_code >= 400:
                response.read()
                check(response)
            final = _follow(response, quiet=as_json)
    except httpx.HTTPError as exc:
        raise unreachable(client, exc) from exc
    run = final.get("run", {})
    if as_json:
        console.print_json(json.dumps(run))
    else:
        output = run.get("output") or {}
        if output.get("answer"):
            console.print(output["answer"], highlight=False, soft_wrap=True)
        err_console.print(
            f"run {run.get('id')} {run.get('status')} on thread {run.get('thread_id')}"
            f"  usage={json.dumps(run.get('usage', {}))}",
            highlight=False,
        )
    if run.get("status") != "succeeded":
        if not as_json:
            err_console.print(f"[bold red]error:[/] {run.get('error')}", highlight=False)
        raise typer.Exit(1)


def _follow(response: httpx.Response, *, quiet: bool) -> dict[str, Any]:
    """Show the plan and each subtask as it starts and ends; the ``run_end`` event."""
    final: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line.startswith("data: "):
            continue
        event = json.loads(line[len("data: ") :])
        kind = event.get("event")
        if kind == "run_end":
            final = event
        if quiet:
            continue
        if kind == "plan":
            for subtask in event["plan"]["subtasks"]:
                after = (
                    f" after {', '.join(subtask['depends_on'])}" if subtask["depends_on"] else ""
                )
                err_console.print(
                    f"[dim]plan: {subtask['id']} → {subtask['agent']}{after}:"
                    f" {subtask['description']}[/]",
                    highlight=False,
                )
        elif kind == "subtask_start":
            err_console.print(f"[dim]… {event['subtask']} ({event['agent']})[/]", highlight=False)
        elif kind == "subtask_end":
            mark = "✓" if event["status"] == "succeeded" else f"✗ {event.get('error', '')}"
            err_console.print(f"[dim]{mark} {event['subtask']}[/]", highlight=False)
    return final
