"""``roost experiments create|list|show|stop``: online experiments on an agent's threads,
on this machine's store through the kernel or, with ``--url`` / ``ROOST_URL``, a server.

``create`` reads a YAML/JSON file::

    name: tone-test
    agent: helper
    variants:
      - {name: control, prompt: "tone@production", weight: 1}
      - {name: small-model, model: "local:smollm2-135m-instruct", weight: 1}
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, fail, format_time
from roost.cli.datasets import services
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, TenantOption, act, tenant_id

if TYPE_CHECKING:
    from roost.platform import Roost

app = typer.Typer(help="Online experiments: variants of prompts or models, with reports.",
                  no_args_is_help=True)  # fmt: skip


@app.command("create")
def create(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Experiment file: .yaml or .json")],
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start an experiment: from now on the agent's threads split between its variants."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read {path}: {exc}")

    async def local(kernel: Roost) -> dict[str, Any]:
        from roost.errors import InvalidRequest
        from roost.evals.experiments import ExperimentSpec

        try:
            spec = ExperimentSpec.model_validate(data)
        except ValueError as exc:
            raise InvalidRequest(f"invalid experiment: {exc}") from exc
        return await services(kernel).create_experiment(await tenant_id(kernel, tenant), spec)

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.post("/v1/experiments", data))

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    names = ", ".join(v["name"] for v in found["variants"])
    console.print(f"experiment {found['name']} on {found['agent']}: {names}", highlight=False)


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Experiments, newest first."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        return await services(kernel).experiments.list(await tenant_id(kernel, tenant))

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.get("/v1/experiments")["data"])

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    rendered = table("name", "agent", "status", "variants", "created", ids=("name",))
    for e in found:
        rendered.add_row(e["name"], e["agent"], e["status"],
                         ", ".join(v["name"] for v in e["variants"]),
                         format_time(e["created_at"]))  # fmt: skip
    print_table(rendered)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The report: per variant success, latency, cost and feedback with 95 % intervals,
    and p-values of the differences."""

    async def local(kernel: Roost) -> dict[str, Any]:
        tenant_key = await tenant_id(kernel, tenant)
        return await services(kernel).experiments.report(tenant_key, name)

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.get(f"/v1/experiments/{name}"))

    report = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(report)
        return
    console.print(f"experiment {report['name']} on {report['agent']} ({report['status']})",
                  highlight=False)  # fmt: skip
    rendered = table("variant", "runs", "success", "latency ms", "cost USD", "feedback",
                     ids=("variant",))  # fmt: skip
    for v in report["variants_report"]:
        rendered.add_row(v["name"], str(v["runs"]), _rate(v["success"]), _mean(v["latency_ms"]),
                         _mean(v["cost_usd"], 6), _rate(v["feedback"]))  # fmt: skip
    print_table(rendered)
    for metric, test in report["significance"].items():
        if test is not None:
            console.print(f"{metric}: {test['test']} p = {test['p_value']:.4g}", highlight=False)


def _rate(value: dict[str, Any]) -> str:
    if value.get("rate") is None:
        return "-"
    low, high = value["ci95"]
    return f"{100 * value['rate']:.0f}% [{100 * low:.0f}–{100 * high:.0f}] n={value['count']}"


def _mean(value: dict[str, Any], digits: int = 1) -> str:
    if value.get("mean") is None:
        return "-"
    interval = value.get("ci95")
    spread = f" ±{(interval[1] - interval[0]) / 2:.{digits}f}" if interval else ""
    return f"{value['mean']:.{digits}f}{spread}"
