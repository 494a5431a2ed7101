"""``/v1/experiments`` (online experiments and their reports) and
``/v1/runs/{run_id}/feedback`` (user feedback on a run), in the caller's tenant (another
tenant's are 404). Reads suit viewers; creating and stopping experiments suit members;
feedback suits members (the end users' application posts it with its key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from roost.evals.experiments import ExperimentSpec
from roost.server.agents import agents_service
from roost.server.evals import eval_services

router = APIRouter(tags=["experiments"])


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: float = Field(ge=0, le=1, description="0 bad … 1 good (thumbs: 0 or 1)")
    comment: str = Field("", max_length=4000)


@router.post("/v1/experiments", status_code=201)
async def create_experiment(body: ExperimentSpec, request: Request) -> dict[str, Any]:
    """Split the agent's threads between the variants from now on (409 when another
    experiment is active on the agent). The agent must exist (404), and every variant's
    prompt resolve (404) and model be offered here (400)."""
    return await eval_services(request).create_experiment(request.state.principal.tenant_id, body)


@router.get("/v1/experiments")
async def list_experiments(request: Request) -> dict[str, Any]:
    found = await eval_services(request).experiments.list(request.state.principal.tenant_id)
    return {"object": "list", "data": found}


@router.get("/v1/experiments/{name}")
async def experiment_report(name: str, request: Request) -> dict[str, Any]:
    """Per variant: success rate, latency, cost and feedback with 95 % intervals, and
    p-values of the differences between variants."""
    return await eval_services(request).experiments.report(request.state.principal.tenant_id, name)


@router.post("/v1/experiments/{name}/stop")
async def stop_experiment(name: str, request: Request) -> dict[str, Any]:
    return await eval_services(request).experiments.stop(request.state.principal.tenant_id, name)


@router.post("/v1/runs/{run_id}/feedback", status_code=201)
async def add_feedback(run_id: str, body: FeedbackBody, request: Request) -> dict[str, Any]:
    tenant_id = request.state.principal.tenant_id
    await agents_service(request.app).get_run(tenant_id, run_id)  # 404 unless the caller's
    return await eval_services(request).feedback.add(tenant_id, run_id, body.score, body.comment)


@router.get("/v1/runs/{run_id}/feedback")
async def list_feedback(run_id: str, request: Request) -> dict[str, Any]:
    tenant_id = request.state.principal.tenant_id
    await agents_service(request.app).get_run(tenant_id, run_id)
    found = await eval_services(request).feedback.list(tenant_id, run_id)
    return {"object": "list", "data": found}
