"""``/v1/datasets`` and ``/v1/evals``: versioned datasets and evaluations over them, in the
caller's tenant (another tenant's are 404). Reads suit viewers; creating datasets,
adding items and starting evaluations suit members."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from roost.errors import Overloaded
from roost.evals.datasets import MAX_ITEMS, NAME_PATTERN, DatasetItem, check_name
from roost.evals.evaluations import EvalTarget
from roost.evals.service import EvalServices

router = APIRouter(tags=["evaluations"])


class CreateDatasetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field("", max_length=2000)
    items: list[DatasetItem] = Field(default_factory=list, max_length=MAX_ITEMS)


class AddItemsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[DatasetItem] = Field(min_length=1, max_length=MAX_ITEMS)


class StartEvalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(pattern=NAME_PATTERN)
    dataset_version: int | None = Field(None, ge=1)
    target: EvalTarget
    scorer: dict[str, Any] = Field(default_factory=lambda: {"type": "exact"})
    mode: Literal["background", "wait"] = "background"
    timeout_s: float = Field(600.0, gt=0, le=3600)


def eval_services(request: Request) -> EvalServices:
    kernel = getattr(request.app.state, "kernel", None)
    services: EvalServices | None = getattr(kernel, "evals", None)
    if services is None:
        raise Overloaded("evaluations are not running in this process")
    return services


@router.post("/v1/datasets", status_code=201)
async def create_dataset(body: CreateDatasetBody, request: Request) -> dict[str, Any]:
    """Version 1, or a new version holding exactly ``items`` (``created`` false when
    nothing changed)."""
    version, created = await eval_services(request).datasets.create(
        request.state.principal.tenant_id, body.name, body.items, body.description
    )
    return {**version.to_dict(), "created": created}


@router.get("/v1/datasets")
async def list_datasets(request: Request) -> dict[str, Any]:
    found = await eval_services(request).datasets.list(request.state.principal.tenant_id)
    return {"object": "list", "data": [d.to_dict(items=False) for d in found]}


@router.get("/v1/datasets/{name}")
async def get_dataset(
    name: str, request: Request, version: int | None = Query(None, ge=1)
) -> dict[str, Any]:
    check_name(name)
    found = await eval_services(request).datasets.get(
        request.state.principal.tenant_id, name, version
    )
    return found.to_dict()


@router.post("/v1/datasets/{name}/items", status_code=201)
async def add_items(name: str, body: AddItemsBody, request: Request) -> dict[str, Any]:
    """Append items: a new version."""
    check_name(name)
    version, created = await eval_services(request).datasets.add(
        request.state.principal.tenant_id, name, body.items
    )
    return {**version.to_dict(items=False), "created": created}


@router.post("/v1/evals", status_code=202)
async def start_eval(body: StartEvalBody, request: Request) -> Any:
    """Run the target over the dataset (each item a durable run) and score each output.
    ``mode: wait`` answers 200 with the results once done."""
    services = eval_services(request)
    tenant_id = request.state.principal.tenant_id
    started = await services.evaluations.start(
        tenant_id, body.dataset, body.target, body.scorer, dataset_version=body.dataset_version
    )
    if body.mode == "background":
        return started
    finished = await services.evaluations.wait(tenant_id, started["id"], body.timeout_s)
    return JSONResponse(finished, status_code=200)


@router.get("/v1/evals")
async def list_evals(request: Request, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    found = await eval_services(request).evaluations.list(request.state.principal.tenant_id, limit)
    return {"object": "list", "data": found}


@router.get("/v1/evals/{eval_id}")
async def get_eval(
    eval_id: str,
    request: Request,
    wait_s: float | None = Query(
        None, gt=0, le=3600, description="Wait this long for it to finish (its loop here)"
    ),
) -> dict[str, Any]:
    """The evaluation, its summary (pass rate with a Wilson interval, mean score and
    latency with t intervals) and each item's result."""
    evaluations = eval_services(request).evaluations
    tenant_id = request.state.principal.tenant_id
    if wait_s is not None:
        return await evaluations.wait(tenant_id, eval_id, wait_s)
    return await evaluations.get(tenant_id, eval_id)
