"""``roost evals run|show|list``: evaluations of an agent (or a prompt + model) over a
dataset. ``run`` goes to a running server (the items run as durable runs there) and
shows progress until every item is scored; ``show`` and ``list`` read this machine's
store or, with ``--url`` / ``ROOST_URL``, a server."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, fail, format_time, settings_from
from roost.cli.datasets import services
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.cli.server_client import ApiKeyOption, UrlOption, check, server_client, unreachable
from roost.cli.target import Api, TenantOption, act, tenant_id

if TYPE_CHECKING:
    from roost.platform import Roost

app = typer.Typer(help="Evaluate agents and prompts over datasets.", no_args_is_help=True)
POLL_S = 0.5


def _scorer(value: str) -> dict[str, Any]:
    """A scorer type (``exact``) or a whole scorer as JSON (``{"type": "regex", ...}``)."""
    if value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            fail(f"--scorer is not JSON: {exc}", code=2)
        return dict(parsed)
    return {"type": value}


@app.command("run")
def run(
    ctx: typer.Context,
    dataset: str,
    agent: Annotated[str | None, typer.Option(help="Evaluate this agent")] = None,
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="Agent version or tag")
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="Or a prompt, name@label")] = None,
    model: Annotated[str | None, typer.Option(help="The model for --prompt")] = None,
    dataset_version: Annotated[int | None, typer.Option(min=1)] = None,
    scorer: Annotated[str, typer.Option(help='exact, or JSON: {"type": "regex", ...}')] = "exact",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run an evaluation on the server and wait for its scores."""
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    target = {k: v for k, v in {"agent": agent, "version": version, "prompt": prompt,
                                "model": model}.items() if v is not None}  # fmt: skip
    body = {"dataset": dataset, "dataset_version": dataset_version, "target": target,
            "scorer": _scorer(scorer)}  # fmt: skip
    client = server_client(settings_from(ctx), url, api_key)
    try:
        with client:
            started = check(client.post("/v1/evals", json=body))
            eval_id = started["id"]
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          console=console, disable=as_json, transient=True) as progress:  # fmt: skip
                task = progress.add_task(f"eval {eval_id}", total=started["item_count"])
                while True:
                    current = check(client.get(f"/v1/evals/{eval_id}"))
                    progress.update(task, completed=current["completed"])
                    if current["status"] != "running":
                        break
                    time.sleep(POLL_S)  # a person watching: the server is asked twice a second
    except httpx.HTTPError as exc:
        raise unreachable(client, exc) from exc
    _print(current, as_json)
    if current["status"] != "succeeded":
        fail(str(current.get("error")))


@app.command("show")
def show(
    ctx: typer.Context,
    eval_id: str,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """An evaluation: its summary and each item's score."""

    async def local(kernel: Roost) -> dict[str, Any]:
        tenant_key = await tenant_id(kernel, tenant)
        return await services(kernel).evaluations.get(tenant_key, eval_id)

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.get(f"/v1/evals/{eval_id}"))

    _print(act(ctx, url, api_key, local=local, remote=remote, tenant=tenant), as_json)


@app.command("list")
def list_evals(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500)] = 20,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluations, newest first."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        return await services(kernel).evaluations.list(await tenant_id(kernel, tenant), limit)

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.get("/v1/evals", limit=limit)["data"])

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    rendered = table("id", "dataset", "target", "status", "pass rate", "created")
    for e in found:
        rate = ((e.get("summary") or {}).get("pass_rate") or {}).get("rate")
        rendered.add_row(e["id"], f"{e['dataset']} v{e['dataset_version']}",
                         _target(e["target"]), e["status"], _percent(rate),
                         format_time(e["created_at"]))  # fmt: skip
    print_table(rendered)


def _print(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    summary = found.get("summary") or {}
    rate = summary.get("pass_rate") or {}
    interval = rate.get("ci95")
    ci = f" (95% CI {_percent(interval[0])}–{_percent(interval[1])})" if interval else ""
    console.print(
        f"eval {found['id']} {found['status']}: {found['dataset']} v{found['dataset_version']}"
        f" on {_target(found['target'])}, {summary.get('passed', 0)}/{found['item_count']}"
        f" passed, {_percent(rate.get('rate'))}{ci}",
        highlight=False, markup=False, soft_wrap=True,
    )  # fmt: skip
    rendered = table("#", "run", "status", "score", "output", "reason", ids=("#", "run"))
    for r in found.get("results", []):
        score = "-" if r["score"] is None else f"{r['score']:.2f}"
        rendered.add_row(str(r["position"]), r["run_id"] or "-", r["status"], score,
                         json.dumps(r["output"])[:80], r["reason"] or "")  # fmt: skip
    print_table(rendered)


def _target(target: dict[str, Any]) -> str:
    if target.get("agent"):
        return f"agent {target['agent']}" + (
            f"@{target['version']}" if target.get("version") else ""
        )
    return f"prompt {target.get('prompt')} on {target.get('model')}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"
