"""``roost prompts create|list|show|label``: managed prompts, on this machine's store
through the kernel or, with ``--url`` / ``ROOST_URL``, on that server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, fail, format_time
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, TenantOption, act, tenant_id

if TYPE_CHECKING:
    from roost.platform import Roost
    from roost.prompts.service import PromptService

app = typer.Typer(help="Managed prompts: versions, labels, config.", no_args_is_help=True)


def _service(kernel: Roost) -> PromptService:
    if kernel.prompts is None:
        fail("prompt management is not available here")
    return kernel.prompts


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    template: Annotated[str | None, typer.Option(help="The template text (Jinja2)")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the template")] = None,
    model: Annotated[str | None, typer.Option(help="Config: the model to call")] = None,
    temperature: Annotated[float | None, typer.Option(min=0, max=2)] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    description: Annotated[str, typer.Option()] = "",
    label: Annotated[list[str] | None, typer.Option("--label", help="Move a label here")] = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a version (none when identical to the newest)."""
    if (template is None) == (file is None):
        fail("give the template with --template or --file", code=2)
    text = template if template is not None else Path(str(file)).read_text()
    config = {k: v for k, v in {"model": model, "temperature": temperature,
                                "max_tokens": max_tokens}.items() if v is not None}  # fmt: skip
    body = {"name": name, "template": text, "config": config, "description": description,
            "labels": label or []}  # fmt: skip

    async def local(kernel: Roost) -> dict[str, Any]:
        from roost.prompts.store import PromptConfig

        version, created = await _service(kernel).store.create(
            await tenant_id(kernel, tenant), name, text, config=PromptConfig(**config),
            description=description, labels=tuple(label or []),
        )  # fmt: skip
        return {**version.to_dict(), "created": created}

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.post("/v1/prompts", body))

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    verb = "created" if found["created"] else "unchanged, still"
    console.print(f"{verb} {found['name']} v{found['version']}", highlight=False)


@app.command("list")
def list_prompts(
    ctx: typer.Context,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The newest version of each prompt."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        found = await _service(kernel).store.list(await tenant_id(kernel, tenant))
        return [p.to_dict() for p in found]

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.get("/v1/prompts")["data"])

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    rendered = table("name", "version", "labels", "variables", "model", "created", ids=("name",))
    for p in found:
        rendered.add_row(p["name"], str(p["version"]), ",".join(p["labels"]) or "-",
                         ",".join(p["variables"]) or "-", p["config"].get("model", "-"),
                         format_time(p["created_at"]))  # fmt: skip
    print_table(rendered)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    ref: Annotated[str | None, typer.Option("--ref", "-r", help="Label or version")] = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version (default: the newest): its labels, config and template."""

    async def local(kernel: Roost) -> dict[str, Any]:
        from roost.prompts.store import PromptRef

        reference = PromptRef.parse(f"{name}@{ref}" if ref else name)
        found = await _service(kernel).store.get(await tenant_id(kernel, tenant), reference)
        return found.to_dict()

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.get(f"/v1/prompts/{name}", ref=ref))

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    labels = ",".join(found["labels"]) or "-"
    console.print(f"{found['name']} v{found['version']}  labels={labels}  config={found['config']}",
                  highlight=False, markup=False)  # fmt: skip
    typer.echo(found["template"])


@app.command("label")
def label(
    ctx: typer.Context,
    name: str,
    label_name: Annotated[str, typer.Argument(metavar="LABEL")],
    version: Annotated[int, typer.Argument(min=1)],
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move LABEL to VERSION (runs see it within the cache TTL)."""

    async def local(kernel: Roost) -> dict[str, Any]:
        store = _service(kernel).store
        found = await store.label(await tenant_id(kernel, tenant), name, label_name, version)
        return found.to_dict()

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.post(f"/v1/prompts/{name}/labels",
                             {"label": label_name, "version": version}))  # fmt: skip

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    console.print(f"{label_name} -> {found['name']} v{found['version']}", highlight=False)
