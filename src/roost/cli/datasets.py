"""``roost datasets create|list|show|add``: versioned datasets, on this machine's store
through the kernel or, with ``--url`` / ``ROOST_URL``, on that server.

Items come from a file of JSON lines (or one JSON array), each
``{"input": ..., "expected": ..., "variables": {...}}``, or one at a time with
``--input`` / ``--expected``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, fail, format_time
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, TenantOption, act, tenant_id

if TYPE_CHECKING:
    from roost.evals.service import EvalServices
    from roost.platform import Roost

app = typer.Typer(help="Datasets of inputs and expected outputs (versioned).",
                  no_args_is_help=True)  # fmt: skip
FileOption = Annotated[
    Path | None, typer.Option("--file", "-f", help="JSON lines (or a JSON array) of items")
]


def services(kernel: Roost) -> EvalServices:
    if kernel.evals is None:
        fail("evaluations are not available here")
    return kernel.evals


def read_items(file: Path | None, given: str | None, expected: str | None) -> list[Any]:
    if file is not None:
        try:
            text = file.read_text()
            stripped = text.strip()
            if stripped.startswith("["):
                items = json.loads(stripped)
            else:
                items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"cannot read items from {file}: {exc}")
        return list(items)
    if given is not None:
        return [{"input": given, **({"expected": expected} if expected is not None else {})}]
    return []


def _items(raw: list[Any]) -> list[Any]:
    from roost.errors import InvalidRequest
    from roost.evals.datasets import DatasetItem

    try:
        return [DatasetItem.model_validate(item) for item in raw]
    except ValueError as exc:
        raise InvalidRequest(f"invalid item: {exc}", param="items") from exc


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    file: FileOption = None,
    description: Annotated[str, typer.Option()] = "",
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a dataset (a new version when it exists and the items differ)."""
    raw = read_items(file, None, None)

    async def local(kernel: Roost) -> dict[str, Any]:
        version, created = await services(kernel).datasets.create(
            await tenant_id(kernel, tenant), name, _items(raw), description
        )
        return {**version.to_dict(items=False), "created": created}

    def remote(api: Api) -> dict[str, Any]:
        body = {"name": name, "items": raw, "description": description}
        found = dict(api.post("/v1/datasets", body))
        found.pop("items", None)
        return found

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    verb = "created" if found["created"] else "unchanged, still"
    console.print(f"{verb} {found['name']} v{found['version']} ({found['item_count']} items)",
                  highlight=False)  # fmt: skip


@app.command("add")
def add(
    ctx: typer.Context,
    name: str,
    file: FileOption = None,
    given: Annotated[str | None, typer.Option("--input", help="One item's input")] = None,
    expected: Annotated[str | None, typer.Option(help="That item's expected output")] = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Append items: a new version."""
    raw = read_items(file, given, expected)
    if not raw:
        fail("give items with --file or --input", code=2)

    async def local(kernel: Roost) -> dict[str, Any]:
        version, created = await services(kernel).datasets.add(
            await tenant_id(kernel, tenant), name, _items(raw)
        )
        return {**version.to_dict(items=False), "created": created}

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.post(f"/v1/datasets/{name}/items", {"items": raw}))

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    console.print(f"{found['name']} v{found['version']} ({found['item_count']} items)",
                  highlight=False)  # fmt: skip


@app.command("list")
def list_datasets(
    ctx: typer.Context,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The newest version of each dataset."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        found = await services(kernel).datasets.list(await tenant_id(kernel, tenant))
        return [d.to_dict(items=False) for d in found]

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.get("/v1/datasets")["data"])

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    rendered = table("name", "version", "items", "created", "description", ids=("name",))
    for d in found:
        rendered.add_row(d["name"], str(d["version"]), str(d["item_count"]),
                         format_time(d["created_at"]), d["description"])  # fmt: skip
    print_table(rendered)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    version: Annotated[int | None, typer.Option("--version", "-v", min=1)] = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version (default: the newest) with its items."""

    async def local(kernel: Roost) -> dict[str, Any]:
        found = await services(kernel).datasets.get(await tenant_id(kernel, tenant), name, version)
        return found.to_dict()

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.get(f"/v1/datasets/{name}", version=version))

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    console.print(f"{found['name']} v{found['version']} ({found['item_count']} items)",
                  highlight=False)  # fmt: skip
    rendered = table("#", "input", "expected", ids=("#",))
    for position, item in enumerate(found["items"]):
        rendered.add_row(str(position), json.dumps(item["input"]), json.dumps(item["expected"]))
    print_table(rendered)
