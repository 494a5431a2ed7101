"""``roost code [TASK]``: the coding agent on the repository you are in.

Runs in this process on the kernel's services (no server needed): the plan, each tool
call and each diff stream to the terminal, approvals are asked there (``--yes`` approves
them). ``-p/--print`` is for scripts: ``--output-format text`` (the summary and the diff),
``json`` (one object at the end) or ``stream-json`` (one JSON object per event, then the
result). ``--resume SESSION`` continues a session: its pending approvals, or a new task
on the same transcript.
"""

from __future__ import annotations

import asyncio
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, err_console, settings_from
from roost.errors import RoostError

if TYPE_CHECKING:
    from roost.coding.session import SessionResult


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    stream_json = "stream-json"


def code(
    ctx: typer.Context,
    task: Annotated[
        str | None, typer.Argument(help="What to do, e.g. 'make the failing test pass'")
    ] = None,
    print_mode: Annotated[
        bool, typer.Option("--print", "-p", help="Non-interactive: print the result and exit")
    ] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--output-format", help="With --print: text, json or stream-json"),
    ] = OutputFormat.text,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Approve every approval the agent asks for")
    ] = False,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this session")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model group or provider:model")
    ] = None,
    agent: Annotated[
        str, typer.Option("--agent", help="A registered agent spec to use instead")
    ] = "coder",
    repo: Annotated[Path, typer.Option("--repo", help="The repository (default: here)")] = Path(
        "."
    ),
    init: Annotated[
        bool, typer.Option("--init", help="Run `git init` if it is not a repository")
    ] = False,
    tenant: Annotated[str, typer.Option("--tenant", "-t")] = "default",
) -> None:
    """Run the coding agent on a git repository: plan, edit, test in the sandbox, reflect."""
    from roost.coding.session import check_repository
    from roost.observe.logging import configure_logging

    settings = settings_from(ctx)
    # Logs to stderr, at warning level: stdout is the result (and --print's JSON).
    configure_logging(settings.logging.model_copy(update={"level": "warning"}))
    if task is None and resume is None:
        err_console.print("[bold red]error:[/] give a TASK, or --resume SESSION")
        raise typer.Exit(2)
    try:
        root = check_repository(repo, init=init) if task is not None else repo.resolve()
        result = asyncio.run(
            _run(
                settings,
                root,
                task,
                resume=resume,
                model=model,
                agent=agent,
                tenant=tenant,
                yes=yes,
                interactive=not print_mode,
                output=output_format,
            )
        )
    except RoostError as exc:
        if print_mode and output_format is not OutputFormat.text:
            print(json.dumps({"type": "error", "error": exc.code, "message": exc.message}))
        else:
            # soft_wrap: a path in the message stays whole (copyable) at any terminal width.
            err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    _print_result(result, print_mode, output_format)
    if result.status != "succeeded":
        raise typer.Exit(1)


async def _run(
    settings: Any,
    root: Path,
    task: str | None,
    *,
    resume: str | None,
    model: str | None,
    agent: str,
    tenant: str,
    yes: bool,
    interactive: bool,
    output: OutputFormat,
) -> SessionResult:
    from roost.coding.session import open_sessions
    from roost.platform.kernel import Roost, RunExecution

    async with await Roost.open(settings, execution=RunExecution(0), connect_mcp=False) as kernel:
        spec = None
        if agent != "coder":
            owner, _ = await kernel.platform.tenants.ensure(tenant)
            spec = (await kernel.runs.registry.get(owner.id, agent)).spec
        sessions = await open_sessions(kernel, tenant=tenant, model=model, spec=spec)
        try:
            on_event = _event_printer(interactive, output)

            async def decide(approval: dict[str, Any]) -> Any:
                if yes:
                    return "approve"
                if not interactive:
                    return "deny"  # nobody to ask: --yes approves
                question = (
                    f"approve {approval['tool']}({json.dumps(approval['arguments'])[:300]})"
                    f" — {approval.get('reason', '')}?"
                )
                ok = await asyncio.to_thread(typer.confirm, question, default=False)
                return "approve" if ok else "deny"

            if task is None:
                assert resume is not None
                return await sessions.resume(resume, decide=decide, on_event=on_event)
            if resume is not None:
                root = await sessions.workspace_of(resume) or root
            return await sessions.run(
                root, task, decide=decide, session_id=resume, on_event=on_event
            )
        finally:
            sessions.close()


def _event_printer(interactive: bool, output: OutputFormat) -> Any:
    def stream_json(event: dict[str, Any]) -> None:
        print(json.dumps({"type": event.get("event"), **event}, default=str), flush=True)

    def show(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "plan":
            console.print("[bold]Plan[/]", highlight=False)
            console.print(event["plan"], highlight=False, markup=False)
        elif kind == "tool_call":
            err_console.print(
                f"[dim]→ {event['tool']}({json.dumps(event.get('arguments'))[:200]})[/]",
                highlight=False,
                markup=True,
            )
        elif kind == "tool_result":
            if event.get("diff"):
                console.print(event["diff"], highlight=False, markup=False)
            if event.get("status") != "ok":
                err_console.print(
                    f"  {event['tool']}: {event.get('error') or event['status']}",
                    highlight=False,
                    markup=False,
                )
        elif kind == "loop":
            err_console.print(f"[yellow]loop detected:[/] {event['what']}", highlight=False)

    if interactive:
        return show
    return stream_json if output is OutputFormat.stream_json else None


def _print_result(result: SessionResult, print_mode: bool, output: OutputFormat) -> None:
    body = {
        "type": "result",
        "session_id": result.session_id,
        "run_id": result.run_id,
        "status": result.status,
        "error": result.error,
        "output": result.output,
        "usage": result.usage,
        "approvals": result.approvals,
        "wall_s": round(result.wall_s, 3),
    }
    if print_mode and output is not OutputFormat.text:
        print(json.dumps(body, default=str), flush=True)
        return
    report = result.output if isinstance(result.output, dict) else {}
    if print_mode:
        sys.stdout.write(str(report.get("summary") or "") + "\n" + str(report.get("diff") or ""))
    err_console.print(
        f"\nsession {result.session_id} {result.status}"
        + (f" ({result.error})" if result.error else "")
        + f"  tests={'pass' if (report.get('tests') or {}).get('passed') else 'fail'}"
        f"  steps={report.get('steps')}  approvals={result.approvals}"
        f"  usage={json.dumps(result.usage)}\n  resume with: roost code --resume {result.session_id}",
        highlight=False,
    )
